"""The pipelined Parquet sink: encoding on a background thread overlaps receiving, with a
bounded number of row groups handed over; failures on either side leave nothing behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.local import LocalFileSystem

from influx_flight import ExportError, write_parquet

T0 = 1_704_067_200 * 10**9


def table(rows: int) -> pa.Table:
    return pa.table(
        {
            "time": pa.array([T0 + i * 10**9 for i in range(rows)], pa.timestamp("ns", tz="UTC")),
            "v": pa.array([float(i) for i in range(rows)]),
        }
    )


class _SlowFile:
    """A local file whose writes are slow, record the writing thread, or fail after a budget."""

    def __init__(self, raw: Any, owner: SlowFS) -> None:
        self._raw, self._owner = raw, owner

    def write(self, data: Any) -> int:
        owner = self._owner
        owner.threads.add(threading.current_thread().name)
        if owner.gate is not None and threading.current_thread().name.startswith(
            "influx-parquet-encode"
        ):
            owner.gate.wait()  # the destination stalls until the test opens the gate
        if owner.fail_after is not None:
            owner.written += len(memoryview(data))
            if owner.written > owner.fail_after:
                raise OSError(28, "No space left on device")
        time.sleep(owner.delay)
        return self._raw.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class SlowFS(LocalFileSystem):
    cachable = False

    def __init__(
        self,
        delay: float = 0.0,
        fail_after: int | None = None,
        gate: threading.Event | None = None,
    ) -> None:
        super().__init__()
        self.delay, self.fail_after, self.written = delay, fail_after, 0
        self.gate = gate
        self.threads: set[str] = set()

    def open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:  # type: ignore[override]
        raw = super().open(path, mode, **kwargs)
        return _SlowFile(raw, self) if "w" in mode else raw


def test_pipelined_equals_serial_and_encodes_off_thread(tmp_path: Path) -> None:
    data = table(10_000)
    fs = SlowFS()
    piped, serial = tmp_path / "piped.parquet", tmp_path / "serial.parquet"
    a = write_parquet(
        data.to_batches(777), data.schema, str(piped), row_group_size=1_000, filesystem=fs
    )
    b = write_parquet(
        data.to_batches(777), data.schema, serial, row_group_size=1_000, encode_queue=0
    )
    assert pq.read_table(piped).equals(pq.read_table(serial))
    assert (a.rows, a.row_groups) == (b.rows, b.row_groups) == (10_000, 10)
    assert "influx-parquet-encode" in fs.threads


@pytest.mark.parametrize("depth", [1, 2])
def test_encode_queue_bounds_how_far_receiving_runs_ahead(tmp_path: Path, depth: int) -> None:
    """With a stalled destination the source is pulled at most (encode_queue + 1) row groups
    ahead: ``depth`` handed to the encoder (the stalled one included) + the one in hand."""
    data = table(20_000)
    fs = SlowFS(gate=threading.Event())
    pulled = [0]
    while_stalled = [0]

    def source() -> Iterator[pa.RecordBatch]:
        for batch in data.to_batches(500):
            pulled[0] += batch.num_rows
            if not fs.gate.is_set():
                while_stalled[0] = pulled[0]
            yield batch

    def open_gate_when_pulling_stops() -> None:
        last = -1
        while last != pulled[0]:
            last = pulled[0]
            time.sleep(1.0)
        fs.gate.set()

    watchdog = threading.Thread(target=open_gate_when_pulling_stops, daemon=True)
    watchdog.start()
    res = write_parquet(
        source(),
        data.schema,
        str(tmp_path / "o.parquet"),
        row_group_size=1_000,
        filesystem=fs,
        encode_queue=depth,
    )
    watchdog.join(5)
    assert res.rows == 20_000
    assert pq.read_table(tmp_path / "o.parquet").equals(data)
    # it does run ahead (receiving overlaps the stalled encode) ...
    assert while_stalled[0] >= depth * 1_000
    # ... but no further than the handed-over groups + the group in hand + one batch
    assert while_stalled[0] <= (depth + 1) * 1_000 + 500


def test_encoder_failure_stops_the_stream_and_leaves_nothing(tmp_path: Path) -> None:
    data = table(50_000)
    fs = SlowFS(fail_after=50_000)
    pulled = [0]

    def source() -> Iterator[pa.RecordBatch]:
        for batch in data.to_batches(1_000):
            pulled[0] += 1
            yield batch

    with pytest.raises(ExportError, match="No space left"):
        write_parquet(
            source(),
            data.schema,
            str(tmp_path / "o.parquet"),
            row_group_size=2_000,
            filesystem=fs,
            compression="none",
        )
    assert list(tmp_path.iterdir()) == []
    assert pulled[0] < 50  # the receiving side stopped early instead of draining the stream


def test_source_failure_while_encoding_leaves_nothing(tmp_path: Path) -> None:
    data = table(30_000)
    out = tmp_path / "o.parquet"
    out.write_bytes(b"previous export")

    def source() -> Iterator[pa.RecordBatch]:
        for i, batch in enumerate(data.to_batches(1_000)):
            if i == 25:
                raise KeyboardInterrupt
            yield batch

    with pytest.raises(KeyboardInterrupt):
        write_parquet(source(), data.schema, out, row_group_size=2_000, filesystem=SlowFS(0.001))
    assert [p.name for p in tmp_path.iterdir()] == ["o.parquet"]
    assert out.read_bytes() == b"previous export"
    assert not [t for t in threading.enumerate() if t.name == "influx-parquet-encode"]


def test_split_by_windows_share_one_encoder(tmp_path: Path) -> None:
    data = table(7_200)  # two hours at 1 s
    res = write_parquet(
        data.to_batches(600), data.schema, tmp_path, split_by="1h", row_group_size=1_000
    )
    assert [f.rows for f in res.files] == [3_600, 3_600]
    back = pa.concat_tables(pq.read_table(f.path) for f in res.files)
    assert back.equals(data)


def test_encode_queue_validated(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="encode_queue"):
        write_parquet([], table(1).schema, tmp_path / "o.parquet", encode_queue=-1)
