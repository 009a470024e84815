"""Read a Parquet file back from any fsspec location without Arrow holding Python objects.

``pyarrow.parquet.read_table(python_file)`` lets Arrow's thread pool keep Python buffers after
the call returns; when the last one is released during interpreter shutdown the process aborts
with "terminate called without an active exception" (apache/arrow#33975, #34314) — a Dagster
step or Airflow task that succeeded would then exit with SIGABRT. Local files are read natively;
remote ones are copied into one Arrow-owned buffer first, so no Python object crosses into Arrow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._sinks import _resolve

if TYPE_CHECKING:
    import pyarrow as pa
    from fsspec import AbstractFileSystem

__all__ = ["read_parquet"]


def read_parquet(
    source: Any,
    *,
    columns: Sequence[str] | None = None,
    filesystem: AbstractFileSystem | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> pa.Table:
    """Read one Parquet file (local path, fsspec URL, UPath or ObjectStoragePath) as a Table.

    The counterpart of :func:`write_parquet`, safe to call in processes that exit right after:
    see the module docstring for the pyarrow shutdown crash it avoids.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = _resolve(source, filesystem, storage_options)
    wanted = list(columns) if columns is not None else None
    if target.is_local:
        return pq.read_table(target.path, columns=wanted)
    with target.fs.open(target.path, "rb") as f:
        size = target.fs.size(target.path)
        buffer = pa.allocate_buffer(size)
        view = memoryview(buffer)
        got = 0
        try:
            while got < size:
                n = f.readinto(view[got:])
                if not n:
                    break
                got += n
        finally:
            view.release()
    if got != size:
        raise OSError(f"{target.display}: read {got} of {size} bytes; the file changed while read")
    return pq.read_table(pa.BufferReader(buffer), columns=wanted)
