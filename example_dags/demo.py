"""`make demo`: the whole loop on one machine, from raw points to downsampled tables and Parquet.

1. starts the stand-in server (`influx-flight serve --demo`) with a synthetic sensor data set;
2. runs the SQL and the InfluxQL downsampling DAGs through Airflow (`airflow dags test`, in a
   temporary AIRFLOW_HOME) for a few hours;
3. materialises the Dagster assets (5-minute rollups, daily Parquet export) for a few partitions;
4. prints what it produced (raw rows, downsampled rows per table, Parquet files with sizes, time
   taken), draws a PNG chart of a raw series against its downsampled series, and says how to
   open the Airflow and Dagster UIs against the same server.

Everything it starts runs in its own process group and is stopped on exit, Ctrl-C included.
Outputs go to `demo-output/` (recreated on every run, so re-runs give the same numbers).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("INFLUX_DEMO_OUTPUT") or REPO / "demo-output")
VENV_BIN = Path(sys.executable).parent

#: The demo data: 4 rooms x 2 sensors at 10 s over 5 days = 345,600 rows of `sensors`
#: (3 fields each) and 4 rooms at 10 s over 5 days = 172,800 rows of `home` (3 fields each):
#: 1.55 million raw points.
DEMO_DAYS = 5
DATABASE = "demo"
AIRFLOW_RUNS = ["2024-01-01T07:00:00+00:00", "2024-01-01T08:00:00+00:00"]  # hours 06:00 and 07:00
DAGSTER_HOURS = ["2024-01-01-06:00", "2024-01-01-07:00", "2024-01-01-08:00"]
DAGSTER_DAY = "2024-01-01"
SQL_DAG = "example_influxdb3_downsample_sql"
INFLUXQL_DAG = "example_influxdb3_downsample_influxql"


def step(number: int, total: int, text: str) -> None:
    print(f"\n[{number}/{total}] {text}", flush=True)


class Processes:
    """Children in their own process groups, all stopped on exit (Ctrl-C included)."""

    def __init__(self) -> None:
        self._children: list[subprocess.Popen[bytes]] = []

    def start(self, argv: Sequence[str], *, env: dict[str, str], log: Path) -> subprocess.Popen:
        handle = log.open("wb")
        child = subprocess.Popen(
            list(argv), env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._children.append(child)
        return child

    def stop_all(self) -> None:
        for child in reversed(self._children):
            if child.poll() is None:
                try:
                    os.killpg(child.pid, signal.SIGTERM)
                    child.wait(timeout=15)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    with suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGKILL)


def run(argv: Sequence[str], *, env: dict[str, str], log: Path, label: str) -> float:
    """Run one command to completion (own process group); fail loudly with its log's tail."""
    started = time.monotonic()
    with log.open("ab") as handle:
        child = subprocess.Popen(
            list(argv), env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = child.wait()
        except BaseException:
            with suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            raise
    took = time.monotonic() - started
    if code != 0:
        tail = log.read_text(errors="replace").splitlines()[-40:]
        raise SystemExit(f"{label} failed (exit {code}); last lines of {log}:\n" + "\n".join(tail))
    print(f"      {label}: ok in {took:.1f} s", flush=True)
    return took


def wait_for_ready_file(path: Path, child: subprocess.Popen, timeout: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size:
            return json.loads(path.read_text())
        if child.poll() is not None:
            raise SystemExit(f"the stand-in server exited early (code {child.returncode})")
        time.sleep(0.2)
    raise SystemExit(f"the stand-in server did not become ready within {timeout:.0f} s")


def main() -> int:
    started = time.monotonic()
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "logs").mkdir(parents=True)
    airflow_home = OUT / "airflow-home"
    dagster_home = OUT / "dagster-home"
    dagster_home.mkdir(parents=True)
    total = 5
    procs = Processes()

    def _interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)
    # Ctrl-C must stop the demo even when started with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with ExitStack() as cleanup:
        cleanup.callback(procs.stop_all)
        step(1, total, f"Starting the stand-in server with {DEMO_DAYS} days of sensor data")
        ready_file = OUT / "server.json"
        server = procs.start(
            [
                str(VENV_BIN / "influx-flight"),
                "serve",
                "--port=0",
                "--demo",
                f"--demo-days={DEMO_DAYS}",
                f"--demo-database={DATABASE}",
                "--wal-flush-interval=0.05",
                f"--ready-file={ready_file}",
            ],
            env=dict(os.environ),
            log=OUT / "logs" / "server.log",
        )
        settings = wait_for_ready_file(ready_file, server)
        print(f"      Flight and HTTP on {settings['http_url']}", flush=True)
        env = dict(os.environ)
        env.update(settings["env"])
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = str(REPO)

        step(2, total, "Airflow: SQL and InfluxQL downsampling DAGs (airflow dags test)")
        airflow_env = dict(env)
        airflow_env.update(
            {
                "AIRFLOW_HOME": str(airflow_home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
                "AIRFLOW_VAR_INFLUXDB3_EXPORT_BASE": (OUT / "airflow-exports").as_uri(),
            }
        )
        airflow_log = OUT / "logs" / "airflow.log"
        run(
            [str(VENV_BIN / "airflow"), "db", "migrate"],
            env=airflow_env,
            log=airflow_log,
            label="airflow db migrate",
        )
        for dag_id in (SQL_DAG, INFLUXQL_DAG):
            for logical_date in AIRFLOW_RUNS:
                run(
                    [str(VENV_BIN / "airflow"), "dags", "test", dag_id, logical_date],
                    env=airflow_env,
                    log=airflow_log,
                    label=f"{dag_id} @ {logical_date}",
                )

        step(3, total, "Dagster: 5-minute rollups for 3 hourly partitions, then a daily Parquet")
        dagster_env = dict(env)
        dagster_env.update(
            {
                "DAGSTER_HOME": str(dagster_home),
                "DAGSTER_EXAMPLE_EXPORT_DIR": str(OUT / "dagster-exports"),
            }
        )
        dagster_log = OUT / "logs" / "dagster.log"
        module = ["-m", "example_dags.dagster_example"]
        for partition in DAGSTER_HOURS:
            run(
                [
                    str(VENV_BIN / "dagster"),
                    "asset",
                    "materialize",
                    *module,
                    "--select",
                    "sensors_5m",
                    "--partition",
                    partition,
                ],
                env=dagster_env,
                log=dagster_log,
                label=f"sensors_5m @ {partition}",
            )
        run(
            [
                str(VENV_BIN / "dagster"),
                "asset",
                "materialize",
                *module,
                "--select",
                "sensors_5m_daily_parquet",
                "--partition",
                DAGSTER_DAY,
            ],
            env=dagster_env,
            log=dagster_log,
            label=f"sensors_5m_daily_parquet @ {DAGSTER_DAY}",
        )

        step(4, total, "Summary")
        summary = summarise(settings)
        step(5, total, "Chart")
        chart = draw_chart(settings)
        print(f"      {chart}")
        print_summary(summary, time.monotonic() - started)
        print_ui_hints(settings)
    return 0


def _client(settings: dict):
    from influx_flight import InfluxDB3Client, InfluxDB3Config

    config = InfluxDB3Config(
        host=settings["env"]["INFLUXDB3_HOST_URL"],
        database=settings["database"],
        token=settings["token"],
    )
    return InfluxDB3Client(config)


def _count_rows(client, table: str) -> int:
    """Rows of ``table``, counted a day at a time: like InfluxDB 3 Core, the stand-in refuses
    a query over more than 72 hours of files (``--query-file-limit``)."""
    total = 0
    for day in range(DEMO_DAYS + 1):
        window = {
            "start": f"2024-01-{1 + day:02d}T00:00:00Z",
            "end": f"2024-01-{2 + day:02d}T00:00:00Z",
        }
        result = client.query(
            f'SELECT count(*) AS n FROM "{table}"'
            " WHERE time >= $start::timestamp AND time < $end::timestamp",
            params=window,
        ).to_table()
        total += result.column("n")[0].as_py()
    return total


def summarise(settings: dict) -> dict:
    tables = {}
    with _client(settings) as client:
        names = client.query("SHOW TABLES").to_table().to_pylist()
        for row in names:
            if row["table_schema"] != "iox":
                continue
            name = row["table_name"]
            rows = _count_rows(client, name)
            columns = client.query(f'SHOW COLUMNS FROM "{name}"').to_table().to_pylist()
            # a point is one field value: every column but time and the tags (Dictionary)
            fields = [
                c
                for c in columns
                if c["column_name"] != "time" and "Dictionary" not in c["data_type"]
            ]
            tables[name] = (rows, rows * len(fields))
    files = sorted(
        (path.relative_to(OUT), path.stat().st_size)
        for path in OUT.rglob("*.parquet")
        if "airflow-home" not in path.parts
    )
    return {"tables": tables, "files": files}


def draw_chart(settings: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    window = {"start": "2024-01-01T06:00:00Z", "end": "2024-01-01T09:00:00Z"}
    with _client(settings) as client:
        raw = client.query(
            "SELECT time, avg(temperature) AS temperature FROM sensors WHERE room = 'Kitchen' "
            "AND time >= $start::timestamp AND time < $end::timestamp GROUP BY time ORDER BY time",
            params=window,
        ).to_table()
        rolled = client.query(
            "SELECT time, temperature_mean FROM sensors_5m WHERE room = 'Kitchen' "
            "AND time >= $start::timestamp AND time < $end::timestamp ORDER BY time",
            params=window,
        ).to_table()
    figure, axes = plt.subplots(figsize=(10, 4.5), dpi=110)
    axes.plot(
        raw.column("time").to_pylist(),
        raw.column("temperature").to_pylist(),
        linewidth=0.6,
        alpha=0.6,
        label="raw: every 10 s (mean of the room's sensors)",
    )
    axes.step(
        rolled.column("time").to_pylist(),
        rolled.column("temperature_mean").to_pylist(),
        where="post",
        linewidth=2,
        label="sensors_5m: mean per 5 minutes (Dagster asset)",
    )
    axes.set_title("Kitchen temperature: raw vs downsampled (Dagster partitions 06:00-09:00 UTC)")
    axes.set_ylabel("temperature")
    axes.legend(loc="best")
    figure.autofmt_xdate()
    figure.tight_layout()
    path = OUT / "kitchen_temperature.png"
    figure.savefig(path)
    plt.close(figure)
    return path


def print_summary(summary: dict, took: float) -> None:
    print("\n==================== what the demo produced ====================")
    print(f"{'table':<24}{'rows':>12}{'points':>14}")
    for name, (rows, points) in sorted(summary["tables"].items()):
        print(f"{name:<24}{rows:>12,}{points:>14,}")
    print(f"\n{'Parquet file':<64}{'bytes':>10}")
    for path, size in summary["files"]:
        print(f"{path!s:<64}{size:>10,}")
    print(f"\ntime taken: {took:.1f} s; outputs under {OUT}/")


def print_ui_hints(settings: dict) -> None:
    connection = json.dumps(
        {
            "conn_type": "influxdb3_flight",
            "host": "http://127.0.0.1",
            "port": 8181,
            "schema": DATABASE,
            "password": "demo-token",
        }
    )
    print(
        "\nThe demo's server has stopped. To explore in the UIs, run one with a fixed token:\n"
        f"  .venv/bin/influx-flight serve --demo --demo-days {DEMO_DAYS} --token demo-token\n"
        "  (Flight and HTTP on 127.0.0.1:8181, as InfluxDB 3; it prints these settings too)\n"
        "then, in each terminal you start a UI from:\n"
        f"  export INFLUXDB3_HOST_URL=http://127.0.0.1:8181 INFLUXDB3_DATABASE_NAME={DATABASE}\n"
        "  export INFLUXDB3_AUTH_TOKEN=demo-token\n"
        f"  export AIRFLOW_CONN_INFLUXDB3_FLIGHT_DEFAULT='{connection}'\n"
        "  Airflow: AIRFLOW__CORE__DAGS_FOLDER=$PWD/example_dags .venv/bin/airflow standalone"
        "  -> http://localhost:8080\n"
        "  Dagster: .venv/bin/dagster dev -m example_dags.dagster_example"
        "  -> http://localhost:3000"
    )


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: every process the demo started has been stopped", file=sys.stderr)
        sys.exit(130)
