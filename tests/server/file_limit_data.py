"""Tables laid out over Core's gen1 windows, shared by the SQL and InfluxQL file-limit tests."""

from __future__ import annotations

import pyarrow as pa

TEN_MINUTES = 600 * 10**9
START = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z
CORE_TEXT = "Query would scan 432 Parquet files, exceeding the file limit. InfluxDB 3 Core caps"


def windows_table(windows: int, per_window: int = 2) -> pa.Table:
    """Rows in ``windows`` consecutive gen1 windows, ``per_window`` rows in each."""
    times = [
        START + w * TEN_MINUTES + k * 60 * 10**9 for w in range(windows) for k in range(per_window)
    ]
    return pa.table(
        {
            "time": pa.array(times, pa.timestamp("ns")),
            "room": ["a" if i % 2 else "b" for i in range(len(times))],
            "v": pa.array(range(len(times)), pa.int64()),
        }
    )
