"""`influx-flight`: one command for people and scripts (query, downsample, export, serve)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each subcommand lives in its own module exposing `add_arguments(parser)` and `run(args) -> int`,
# so that `influx-flight query` never imports the server and `serve` never imports the client.
_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "query": ("influx_flight._cli_commands", "Run a SQL or InfluxQL query and print or export it."),
    "downsample": ("influx_flight._cli_commands", "Aggregate a time range and write it back."),
    "export": (
        "influx_flight._cli_export",
        "Export a time range as a Hive-partitioned Parquet dataset, window by window.",
    ),
    "serve": ("influx_flight.server.cli", "Run the local InfluxDB 3 stand-in server."),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="influx-flight", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in _SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        getattr(module, f"add_{name}_arguments")(sub_parser)
        sub_parser.set_defaults(_run=getattr(module, f"run_{name}"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
