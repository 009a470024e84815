"""`influx-flight serve`: run the local InfluxDB 3 stand-in until SIGINT/SIGTERM.

Prints both addresses, the token and ready-to-paste settings for Airflow
(`AIRFLOW_CONN_INFLUXDB3_FLIGHT_DEFAULT`) and Dagster (`INFLUXDB3_*`), then a line `ready` so
scripts can wait for it; `--ready-file` writes the same settings as JSON. Only argparse is
imported at module level: the dispatcher imports this module to build its parser.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from influx_flight.server.limits import (
    DEFAULT_MAX_CONCURRENT_QUERIES,
    DEFAULT_MAX_EXPRESSION_DEPTH,
    DEFAULT_MAX_QUERY_BYTES,
    DEFAULT_QUEUE_TIMEOUT,
    Limits,
)

__all__ = ["add_serve_arguments", "connection_settings", "main", "run_serve"]


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `influx-flight serve`."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=8181,
        help="port of Flight (gRPC) and the HTTP API together, as Core; 0 picks a free one (8181)",
    )
    parser.add_argument(
        "--http-port",
        type=int,
        default=None,
        help="serve the HTTP API on its own port instead (0 picks a free one); default: --port",
    )
    parser.add_argument(
        "--token",
        action="append",
        default=None,
        help="accepted token (repeatable); one apiv3_... token is generated when none is given",
    )
    parser.add_argument(
        "--without-auth", action="store_true", help="accept any request, as Core's --without-auth"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep data on disk (WAL + Parquet); acknowledged writes survive a crash",
    )
    parser.add_argument(
        "--query-file-limit",
        type=int,
        default=432,
        help="refuse a query scanning more gen1 (10-minute) files per table, as Core does"
        " (432 = 72 hours); 0 turns the check off",
    )
    parser.add_argument(
        "--wal-flush-interval",
        type=float,
        default=1.0,
        help="seconds between group commits; writes are acknowledged at a flush (1.0, as Core)",
    )
    limits = parser.add_argument_group("guard rails (docs/standin.md)")
    limits.add_argument(
        "--max-query-bytes",
        type=int,
        default=DEFAULT_MAX_QUERY_BYTES,
        help=f"longest SQL/InfluxQL text accepted ({DEFAULT_MAX_QUERY_BYTES})",
    )
    limits.add_argument(
        "--max-expression-depth",
        type=int,
        default=DEFAULT_MAX_EXPRESSION_DEPTH,
        help=f"deepest expression accepted, checked before planning ({DEFAULT_MAX_EXPRESSION_DEPTH})",
    )
    limits.add_argument(
        "--max-concurrent-queries",
        type=int,
        default=DEFAULT_MAX_CONCURRENT_QUERIES,
        help=f"queries running at once; more wait for a slot ({DEFAULT_MAX_CONCURRENT_QUERIES})",
    )
    limits.add_argument(
        "--query-queue-timeout",
        type=float,
        default=DEFAULT_QUEUE_TIMEOUT,
        help=f"seconds a query waits for a slot before RESOURCE_EXHAUSTED ({DEFAULT_QUEUE_TIMEOUT:g})",
    )
    limits.add_argument(
        "--exec-mem-pool-bytes",
        type=int,
        default=None,
        help="memory pool of each query (default 20%% of physical memory, as Core's pool)",
    )
    demo = parser.add_argument_group("demo data")
    demo.add_argument("--demo", action="store_true", help="load the synthetic sensor data set")
    demo.add_argument("--demo-database", default="demo", help="database for the demo data (demo)")
    demo.add_argument("--demo-rooms", type=int, default=4, help="rooms (4)")
    demo.add_argument("--demo-sensors", type=int, default=2, help="sensors per room (2)")
    demo.add_argument("--demo-days", type=float, default=1.0, help="days of data at 10 s (1)")
    demo.add_argument(
        "--demo-points",
        type=int,
        default=None,
        help="total points instead of --demo-days (days derived from rooms x sensors)",
    )
    demo.add_argument(
        "--demo-start",
        default=None,
        help="ISO start time of the demo data (default 2024-01-01T00:00:00Z); 'now' ends it now",
    )
    parser.add_argument(
        "--ready-file",
        type=Path,
        default=None,
        help="write the connection settings as JSON to this file once serving",
    )


def connection_settings(
    host: str, flight_port: int, http_port: int, token: str, database: str
) -> dict[str, Any]:
    """The settings printed at start and written to --ready-file.

    On one port (``http_port == flight_port``, the default) a connection is just host,
    database and token, as with Core; a split HTTP port adds ``write_url``.
    """
    public_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    flight_url = f"http://{public_host}:{flight_port}"
    write_url = f"http://{public_host}:{http_port}"
    shared = http_port == flight_port
    airflow: dict[str, Any] = {
        "conn_type": "influxdb3_flight",
        "host": f"http://{public_host}",
        "port": flight_port,
        "schema": database,
        "password": token,
    }
    env = {
        "AIRFLOW_CONN_INFLUXDB3_FLIGHT_DEFAULT": "",
        "INFLUXDB3_HOST_URL": flight_url,
        "INFLUXDB3_DATABASE_NAME": database,
        "INFLUXDB3_AUTH_TOKEN": token,
    }
    if not shared:
        airflow["extra"] = {"write_url": write_url}
        env["INFLUXDB3_WRITE_URL"] = write_url
    env["AIRFLOW_CONN_INFLUXDB3_FLIGHT_DEFAULT"] = json.dumps(airflow, separators=(",", ":"))
    return {
        "flight_uri": f"grpc+tcp://{public_host}:{flight_port}",
        "flight_port": flight_port,
        "http_url": write_url,
        "http_port": http_port,
        "token": token,
        "database": database,
        "env": env,
    }


def _demo_spec(args: argparse.Namespace) -> Any:
    """The DemoSpec the --demo-* options describe."""
    import dataclasses
    from datetime import UTC, datetime

    from influx_flight.server.demo_data import DEFAULT_START, DemoSpec

    if args.demo_points is not None:
        spec = DemoSpec.for_points(
            args.demo_points, rooms=args.demo_rooms, sensors=args.demo_sensors
        )
    else:
        spec = DemoSpec(rooms=args.demo_rooms, sensors=args.demo_sensors, days=args.demo_days)
    start = DEFAULT_START
    if args.demo_start == "now":
        end = int(time.time()) // spec.interval_s * spec.interval_s
        start = datetime.fromtimestamp(end - spec.points_per_series * spec.interval_s, UTC)
    elif args.demo_start:
        try:
            start = datetime.fromisoformat(args.demo_start.replace("Z", "+00:00"))
        except ValueError:
            raise SystemExit(
                f"--demo-start {args.demo_start!r} is not an ISO time like 2024-01-01T00:00:00Z "
                "or 'now'"
            ) from None
    return dataclasses.replace(spec, start=start)


def run_serve(args: argparse.Namespace) -> int:
    """Start the stand-in, print the settings and block until SIGINT/SIGTERM."""
    from influx_flight.server.app import StandInServer

    if args.query_file_limit < 0:
        print("--query-file-limit must be >= 0 (0 turns the limit off)", file=sys.stderr)
        return 2
    if args.wal_flush_interval <= 0:
        print("--wal-flush-interval must be > 0 seconds", file=sys.stderr)
        return 2
    try:
        limits = Limits(
            max_query_bytes=args.max_query_bytes,
            max_expression_depth=args.max_expression_depth,
            max_concurrent_queries=args.max_concurrent_queries,
            queue_timeout=args.query_queue_timeout,
            query_memory_bytes=args.exec_mem_pool_bytes,
        )
    except ValueError as exc:
        print(f"invalid limit: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server = StandInServer(
        tokens=args.token,
        without_auth=args.without_auth,
        data_dir=str(args.data_dir) if args.data_dir else None,
        wal_flush_interval=args.wal_flush_interval,
        query_file_limit=args.query_file_limit,
        host=args.host,
        port=args.port,
        http_port=args.http_port,
        limits=limits,
    )
    try:
        server.start()
    except OSError as exc:
        print(
            f"could not start the stand-in: {exc}. Is the port in use? Try --port 0 (and "
            "--http-port 0 when HTTP is split off) to pick free ports.",
            file=sys.stderr,
        )
        return 1
    try:
        database = args.demo_database
        if args.demo:
            from influx_flight.server.demo_data import HOME_TABLE, load_demo_data, load_home_data

            spec = _demo_spec(args)
            engine = server.engine
            loaded = False
            for table, loader, shape in (
                (spec.table, load_demo_data, f"{spec.rooms} rooms x {spec.sensors} sensors"),
                (HOME_TABLE, load_home_data, f"{spec.rooms} rooms"),
            ):
                if engine.has_database(database) and table in engine.tables(database):
                    print(f"demo data: {database}.{table} already present in the data dir")
                    continue
                started = time.perf_counter()
                rows = loader(engine, database, spec)
                loaded = True
                print(
                    f"demo data: {rows} rows x 3 fields in {database}.{table} ({shape}, every "
                    f"{spec.interval_s}s from {spec.start.isoformat()}) in "
                    f"{time.perf_counter() - started:.2f}s"
                )
            if loaded and server.pipeline is not None and args.data_dir:
                server.pipeline.compact()  # demo rows bypass the WAL: persist them now
        settings = connection_settings(
            args.host, int(server.flight_port), int(server.http_port or 0), server.token, database
        )
        auth = "off (--without-auth)" if args.without_auth else "on"
        if server.shared_port:
            print(f"Flight + HTTP: {settings['flight_uri']} and {settings['http_url']} (one port)")
        else:
            print(f"Flight (gRPC): {settings['flight_uri']}")
            print(f"HTTP API:      {settings['http_url']}")
        print(f"token:         {server.token}   (auth {auth})")
        if args.data_dir:
            print(f"data dir:      {args.data_dir}")
        print()
        print("# Airflow connection:")
        print(
            "export AIRFLOW_CONN_INFLUXDB3_FLIGHT_DEFAULT='"
            + settings["env"]["AIRFLOW_CONN_INFLUXDB3_FLIGHT_DEFAULT"]
            + "'"
        )
        print("# Dagster / influx_flight (InfluxDB3Config.from_env):")
        for key, value in settings["env"].items():
            if key.startswith("INFLUXDB3_"):
                print(f"export {key}='{value}'")
        if args.ready_file:
            tmp = args.ready_file.with_name(args.ready_file.name + ".tmp")
            tmp.write_text(json.dumps(settings, indent=2))
            os.replace(tmp, args.ready_file)
        print("ready", flush=True)
        while not stop.wait(0.5):
            pass
        print("shutting down: flushing the write-ahead log", flush=True)
    finally:
        server.stop()
    if server.abandoned_calls:
        # A client still reading keeps a gRPC call (and its thread) alive; the WAL is flushed
        # and closed, so leave without waiting for it at interpreter exit.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m influx_flight.server.cli [serve] ...`: the serve command on its own."""
    parser = argparse.ArgumentParser(
        prog="influx-flight serve", description="Run the local InfluxDB 3 stand-in server."
    )
    add_serve_arguments(parser)
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["serve"]:
        args_list = args_list[1:]
    return run_serve(parser.parse_args(args_list))


if __name__ == "__main__":
    sys.exit(main())
