"""Arrow, pandas or a query result as InfluxDB line protocol, without sending it.

``client.write()`` encodes and sends in one call; use this module when the lines go somewhere
else (a file, a queue, another client) or to see exactly what a write would send. The encoder
is vectorised (pyarrow.compute) and follows InfluxDB 3's parser for escaping; values line
protocol cannot carry raise :class:`influx_flight.EncodingError` before anything is produced.

Examples:
    from influx_flight.lineprotocol import encode_table

    lines = encode_table(table, measurement="cpu", tags=["host"], precision="s")
    path.write_text(lines.text())

Importing this module imports pyarrow (``import influx_flight`` alone does not).
"""

from __future__ import annotations

from influx_flight._lineprotocol import EncodedChunk, EncodedLines, encode_table, iter_encode

__all__ = ["EncodedChunk", "EncodedLines", "encode_table", "iter_encode"]
