"""The stand-in's engine: InfluxDB 3 table model, catalog, SQL, snapshots and threads."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from influx_flight.server.engine import (
    TAG_TYPE,
    Engine,
    TableSchema,
    hydrate_batch,
    hydrate_schema,
    placeholders,
)
from influx_flight.server.errors import (
    DatabaseAlreadyExists,
    DatabaseNotFound,
    InvalidDatabaseName,
    QueryPlanError,
    WriteRejected,
)


def _ts(*values: int) -> pa.Array:
    return pa.array(list(values), pa.timestamp("ns"))


def _cpu(host: list[str], usage: list[float], times: list[int]) -> pa.RecordBatch:
    return pa.record_batch(
        {
            "usage": pa.array(usage),
            "host": pa.array(host).dictionary_encode(),
            "time": _ts(*times),
        }
    )


@pytest.fixture
def engine() -> Engine:
    return Engine()


# -- table model --------------------------------------------------------------------------------


def test_append_creates_database_and_table_with_sorted_columns(engine: Engine) -> None:
    engine.append("db", "cpu", _cpu(["a", "b"], [1.0, 2.0], [1, 2]))
    assert engine.list_databases() == ["db"]
    assert engine.tables("db") == {
        "cpu": TableSchema(tags=["host"], fields={"usage": pa.float64()})
    }
    schema = engine.table_arrow_schema("db", "cpu")
    assert schema.names == ["host", "time", "usage"]
    assert schema.field("host").type == TAG_TYPE
    assert schema.field("time").type == pa.timestamp("ns")
    assert not schema.field("time").nullable
    assert schema.field("host").metadata[b"iox::column::type"] == b"iox::column_type::tag"
    assert schema.field("usage").metadata[b"iox::column::type"] == b"iox::column_type::field::float"


def test_field_types_are_kept(engine: Engine) -> None:
    batch = pa.record_batch(
        {
            "f": pa.array([1.5]),
            "i": pa.array([-1], pa.int64()),
            "u": pa.array([1], pa.uint64()),
            "s": pa.array(["x"], pa.large_string()),
            "b": pa.array([True]),
            "time": _ts(5),
        }
    )
    engine.append("db", "m", batch)
    fields = engine.tables("db")["m"].fields
    assert fields == {
        "b": pa.bool_(),
        "f": pa.float64(),
        "i": pa.int64(),
        "s": pa.utf8(),
        "u": pa.uint64(),
    }
    table = engine.query_sql("db", "SELECT * FROM m").read_all()
    assert table.schema.types == [
        pa.bool_(),
        pa.float64(),
        pa.int64(),
        pa.utf8(),
        pa.timestamp("ns"),
        pa.uint64(),
    ]
    row = table.drop_columns(["time"]).to_pylist()
    assert row == [{"b": True, "f": 1.5, "i": -1, "s": "x", "u": 1}]
    assert table.column("time").cast(pa.int64()).to_pylist() == [5]


def test_schema_grows_and_old_rows_read_null(engine: Engine) -> None:
    engine.append("db", "cpu", _cpu(["a"], [1.0], [1]))
    engine.append(
        "db",
        "cpu",
        pa.record_batch(
            {"time": _ts(2), "region": pa.array(["eu"]).dictionary_encode(), "idle": [0.5]}
        ),
    )
    table = engine.query_sql("db", "SELECT * FROM cpu ORDER BY time").read_all()
    assert table.column_names == ["host", "idle", "region", "time", "usage"]
    assert table.column("idle").to_pylist() == [None, 0.5]
    assert table.column("usage").to_pylist() == [1.0, None]
    assert table.column("region").to_pylist() == [None, "eu"]
    assert engine.tables("db")["cpu"].tags == ["host", "region"]


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (
            pa.array([1], pa.int64()),
            "expected iox::column_type::field::float, got iox::column_type::field::integer",
        ),
        (
            pa.array(["x"]).dictionary_encode(),
            "expected iox::column_type::field::float, got iox::column_type::tag",
        ),
    ],
)
def test_type_conflict_rejects_the_whole_batch(
    engine: Engine, column: pa.Array, message: str
) -> None:
    engine.append("db", "cpu", _cpu(["a"], [1.0], [1]))
    bad = pa.record_batch({"usage": column, "time": _ts(2), "new_col": [1.0]})
    with pytest.raises(WriteRejected, match=message):
        engine.append("db", "cpu", bad)
    # nothing of the rejected batch is visible, not even its new column
    assert engine.tables("db")["cpu"].fields == {"usage": pa.float64()}
    assert engine.query_sql("db", "SELECT count(*) AS n FROM cpu").read_all().to_pylist() == [
        {"n": 1}
    ]


def test_tag_and_field_cannot_share_a_name(engine: Engine) -> None:
    engine.append("db", "cpu", _cpu(["a"], [1.0], [1]))
    with pytest.raises(WriteRejected, match="column 'host'"):
        engine.append("db", "cpu", pa.record_batch({"host": ["plain string"], "time": _ts(2)}))


@pytest.mark.parametrize(
    "batch",
    [
        pa.record_batch({"v": [1.0]}),
        pa.record_batch({"v": [1.0], "time": pa.array(["2020"])}),
        pa.record_batch({"v": pa.array([1], pa.int8()), "time": _ts(1)}),
        pa.record_batch({"v": [1.0], "time": pa.array([None], pa.timestamp("ns"))}),
    ],
    ids=["no-time", "string-time", "int8-field", "null-time"],
)
def test_unusable_batches_are_rejected_clearly(engine: Engine, batch: pa.RecordBatch) -> None:
    with pytest.raises(WriteRejected) as info:
        engine.append("db", "m", batch)
    assert info.value.message
    assert not engine.has_database("db")


def test_time_units_and_zones_are_normalised(engine: Engine) -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    seconds = int(when.timestamp())
    engine.append(
        "db",
        "m",
        pa.record_batch({"v": [1.0], "time": pa.array([seconds], pa.timestamp("s", tz="UTC"))}),
    )
    engine.append("db", "m", pa.record_batch({"v": [2.0], "time": pa.array([seconds * 10**9 + 1])}))
    table = engine.query_sql("db", "SELECT time FROM m ORDER BY v").read_all()
    assert table.schema.field("time").type == pa.timestamp("ns")
    values = table.column("time").cast(pa.int64()).to_pylist()
    assert values == [seconds * 10**9, seconds * 10**9 + 1]


def test_tags_parameter_and_metadata_mark_tags(engine: Engine) -> None:
    engine.append(
        "db",
        "m",
        pa.record_batch({"room": ["kitchen"], "v": [1.0], "time": _ts(1)}),
        tags=["room"],
    )
    meta_tag = pa.field(
        "sensor", pa.utf8(), metadata={"iox::column::type": "iox::column_type::tag"}
    )
    engine.append(
        "db",
        "m",
        pa.RecordBatch.from_arrays(
            [pa.array(["s1"]), pa.array([2.0]), _ts(2)],
            schema=pa.schema([meta_tag, ("v", pa.float64()), ("time", pa.timestamp("ns"))]),
        ),
    )
    assert engine.tables("db")["m"].tags == ["room", "sensor"]


def test_many_small_appends_keep_every_row(engine: Engine) -> None:
    for i in range(200):
        engine.append("db", "m", _cpu([f"h{i % 7}"], [float(i)], [i]))
    out = engine.query_sql("db", "SELECT sum(usage) AS s, count(*) AS n FROM m").read_all()
    assert out.to_pylist() == [{"s": float(sum(range(200))), "n": 200}]
    hosts = engine.query_sql("db", "SELECT DISTINCT host FROM m ORDER BY host").read_all()
    assert hosts.column("host").to_pylist() == [f"h{i}" for i in range(7)]


# -- catalog ------------------------------------------------------------------------------------


def test_database_lifecycle(engine: Engine) -> None:
    engine.create_database("a")
    engine.create_database("b-1_x")
    assert engine.list_databases() == ["a", "b-1_x"]
    with pytest.raises(DatabaseAlreadyExists):
        engine.create_database("a")
    engine.delete_database("a")
    assert not engine.has_database("a")
    with pytest.raises(DatabaseNotFound, match="database not found: a"):
        engine.delete_database("a")
    with pytest.raises(DatabaseNotFound):
        engine.tables("a")
    assert engine.tables("b-1_x") == {}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "db name cannot be empty"),
        ("_x", "db name did not start with a number or letter"),
        ("a b", "invalid character in database or rp name: "),
        ("a/b/c", "invalid character"),
        ("x" * 512, "longer than 511"),
    ],
)
def test_database_names_follow_core_rules(engine: Engine, name: str, message: str) -> None:
    with pytest.raises(InvalidDatabaseName, match=message):
        engine.create_database(name)


def test_show_tables_and_columns_use_public_iox(engine: Engine) -> None:
    engine.append("db", "cpu", _cpu(["a"], [1.0], [1]))
    tables = engine.query_sql("db", "SHOW TABLES").read_all().to_pylist()
    assert {
        "table_catalog": "public",
        "table_schema": "iox",
        "table_name": "cpu",
        "table_type": "BASE TABLE",
    } in tables
    assert {"system", "information_schema", "iox"} <= {t["table_schema"] for t in tables}
    columns = engine.query_sql("db", "SHOW COLUMNS FROM cpu").read_all().to_pylist()
    assert [(c["column_name"], c["data_type"]) for c in columns] == [
        ("host", "Dictionary(Int32, Utf8)"),
        ("time", "Timestamp(ns)"),
        ("usage", "Float64"),
    ]
    full = engine.query_sql("db", "SELECT count(*) AS n FROM public.iox.cpu").read_all()
    assert full.to_pylist() == [{"n": 1}]


def test_system_queries_lists_earlier_queries(engine: Engine) -> None:
    engine.append("db", "cpu", _cpu(["a"], [1.0], [1]))
    engine.query_sql("db", "SELECT 42 AS answer").read_all()
    rows = engine.query_sql(
        "db", "SELECT query_text, query_type, success FROM system.queries"
    ).read_all()
    assert {"query_text": "SELECT 42 AS answer", "query_type": "sql", "success": True} in (
        rows.to_pylist()
    )


def test_databases_are_isolated(engine: Engine) -> None:
    engine.append("one", "cpu", _cpu(["a"], [1.0], [1]))
    engine.create_database("two")
    with pytest.raises(QueryPlanError, match=r"table 'public\.iox\.cpu' not found"):
        engine.query_sql("two", "SELECT * FROM cpu")


# -- queries ------------------------------------------------------------------------------------


def test_query_streams_batches(engine: Engine) -> None:
    n = 100_000
    engine.append(
        "db",
        "m",
        pa.record_batch(
            {
                "v": pa.array(range(n), pa.float64()),
                "time": pa.array(range(n)).cast(pa.timestamp("ns")),
            }
        ),
    )
    reader = engine.query_sql("db", "SELECT * FROM m")
    assert isinstance(reader, pa.RecordBatchReader)
    first = reader.read_next_batch()
    assert 0 < first.num_rows < n
    rest = sum(b.num_rows for b in reader)
    assert first.num_rows + rest == n


def test_hydrate_option_and_helpers(engine: Engine) -> None:
    engine.append("db", "cpu", _cpu(["a", "b"], [1.0, 2.0], [1, 2]))
    raw = engine.query_sql("db", "SELECT host FROM cpu").read_all()
    assert pa.types.is_dictionary(raw.schema.field("host").type)
    hydrated = engine.query_sql("db", "SELECT host, host AS h2 FROM cpu", hydrate=True).read_all()
    assert hydrated.schema.types == [pa.utf8(), pa.utf8()]
    batch = raw.to_batches()[0]
    assert hydrate_batch(batch).schema == hydrate_schema(batch.schema)
    assert hydrate_batch(batch).column(0).to_pylist() == batch.column(0).to_pylist()


def test_sql_schema_plans_without_running(engine: Engine) -> None:
    engine.append("db", "cpu", _cpu(["a"], [1.0], [1]))
    schema = engine.sql_schema("db", "SELECT host, usage * 2 AS u2 FROM cpu WHERE usage > $x")
    assert schema.names == ["host", "u2"]
    assert pa.types.is_dictionary(schema.field("host").type)
    assert engine.sql_schema("db", "SELECT host FROM cpu", hydrate=True).field("host").type == (
        pa.utf8()
    )


def test_placeholder_scan_skips_literals_and_comments() -> None:
    sql = "SELECT '$a', \"$b\", $c -- $d\n FROM t WHERE x = $e /* $f */ AND y = $c AND z = $1"
    assert placeholders(sql) == ["c", "e", "1"]


def test_empty_query_is_rejected(engine: Engine) -> None:
    engine.create_database("db")
    with pytest.raises(QueryPlanError, match="empty"):
        engine.query_sql("db", "   ")


def test_query_snapshot_ignores_later_appends(engine: Engine) -> None:
    engine.append("db", "m", pa.record_batch({"v": [1.0], "time": _ts(1)}))
    reader = engine.query_sql("db", "SELECT count(*) AS n FROM m")
    engine.append("db", "m", pa.record_batch({"v": [2.0], "time": _ts(2)}))
    assert reader.read_all().to_pylist() == [{"n": 1}]
    assert engine.query_sql("db", "SELECT count(*) AS n FROM m").read_all().to_pylist() == [
        {"n": 2}
    ]


def test_concurrent_appends_and_queries(engine: Engine) -> None:
    engine.append("db", "m", pa.record_batch({"v": [0.0], "time": _ts(0)}))
    errors: list[BaseException] = []
    stop = threading.Event()
    counts: dict[int, list[int]] = {0: [], 1: []}

    def writer() -> None:
        try:
            for i in range(1, 301):
                cols = {"v": [float(i)], "time": _ts(i)}
                if i % 50 == 0:
                    cols[f"extra_{i}"] = [1.0]  # schema grows while queries run
                engine.append("db", "m", pa.record_batch(cols))
        except BaseException as exc:
            errors.append(exc)
        finally:
            stop.set()

    def reader(slot: int) -> None:
        try:
            while not stop.is_set():
                n = engine.query_sql("db", "SELECT count(*) AS n FROM m").read_all()
                counts[slot].append(n.column("n")[0].as_py())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader, args=(slot,)) for slot in counts
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    for seen in counts.values():
        # each reader sees a growing table, never a torn or shrinking one
        assert seen == sorted(seen)
        assert all(1 <= c <= 301 for c in seen)
    total = engine.query_sql("db", "SELECT count(*) AS n, sum(v) AS s FROM m").read_all()
    assert total.to_pylist() == [{"n": 301, "s": float(sum(range(301)))}]


def test_pure_scan_fast_path_matches_datafusion_and_sees_new_data(engine: Engine) -> None:
    """SELECT * streams cached hydrated batches; results must equal DataFusion's own."""
    engine.append("db", "m", _cpu(["a", "b", "a"], [1.0, 2.0, 3.0], [1, 2, 3]))

    def both(sql: str) -> tuple[pa.Table, pa.Table]:
        fast = engine.query_sql("db", sql, hydrate=True).read_all()
        slow = engine.query_sql("db", sql + " ORDER BY time", hydrate=True).read_all()
        return fast.sort_by("time"), slow

    fast, slow = both("SELECT * FROM m")
    assert fast.equals(slow)
    assert fast.schema.field("host").type == pa.utf8()
    # a new batch and a new column after the cache was filled
    engine.append(
        "db",
        "m",
        pa.record_batch(
            {"time": _ts(4), "host": pa.array(["c"]).dictionary_encode(), "extra": [True]}
        ),
    )
    fast, slow = both("SELECT * FROM m")
    assert fast.equals(slow)
    assert fast.column_names == ["extra", "host", "time", "usage"]
    assert fast.column("host").to_pylist() == ["a", "b", "a", "c"]
    fast, slow = both("SELECT usage, host, time FROM m")
    assert fast.equals(slow)
    assert fast.column_names == ["usage", "host", "time"]


def test_string_literals_and_casts_are_utf8_not_utf8view(engine: Engine) -> None:
    engine.create_database("db")
    out = engine.query_sql(
        "db", "SELECT arrow_typeof('a') AS lit, arrow_typeof(CAST(1 AS VARCHAR)) AS cast"
    ).read_all()
    assert out.to_pylist() == [{"lit": "Utf8", "cast": "Utf8"}]


def test_table_names_keep_their_case_and_punctuation(engine: Engine) -> None:
    """Measurements like `homeAssistant` or `my.table` are named exactly as written."""
    for name in ["homeAssistant", "my.table", "Mixed Space", "cpu"]:
        engine.append("db", name, pa.record_batch({"v": [1.0], "time": _ts(1)}))
    for sql in [
        'SELECT count(*) AS n FROM "homeAssistant"',
        'SELECT count(*) AS n FROM "my.table"',
        'SELECT count(*) AS n FROM "Mixed Space"',
        "SELECT count(*) AS n FROM CPU",  # unquoted identifiers are lowercased, as in Core
    ]:
        assert engine.query_sql("db", sql).read_all().to_pylist() == [{"n": 1}], sql
    with pytest.raises(QueryPlanError, match=r"table 'public\.iox\.homeassistant' not found"):
        engine.query_sql("db", "SELECT * FROM homeAssistant")
    names = engine.query_sql(
        "db", "SELECT table_name FROM information_schema.tables WHERE table_schema = 'iox'"
    ).read_all()
    assert sorted(names.column(0).to_pylist()) == [
        "Mixed Space",
        "cpu",
        "homeAssistant",
        "my.table",
    ]


def test_queries_see_only_what_they_name_but_catalog_queries_see_all(engine: Engine) -> None:
    for i in range(30):
        engine.append("db", f"t{i}", pa.record_batch({"v": [float(i)], "time": _ts(i)}))
    assert engine.query_sql(
        "db", "SELECT a.v + b.v AS s FROM t3 a CROSS JOIN t4 b"
    ).read_all().to_pylist() == [{"s": 7.0}]
    shown = engine.query_sql("db", "SHOW TABLES").read_all()
    assert sum(1 for s in shown.column("table_schema").to_pylist() if s == "iox") == 30
    columns = engine.query_sql("db", "DESCRIBE t29").read_all()
    assert columns.column(0).to_pylist() == ["time", "v"]


def test_order_by_survives_hydration_of_tag_columns() -> None:
    """ORDER BY over a tag column's table: casting tags to strings must not reorder batches."""
    engine = Engine()
    rows = 100_000  # several 32768-row batches
    tag = pa.array([f"k{i % 10}" for i in range(rows)]).dictionary_encode()
    engine.append(
        "db",
        "big",
        pa.record_batch(
            {
                "time": pa.array(range(rows), pa.timestamp("ns")),
                "k": tag.cast(pa.dictionary(pa.int32(), pa.string())),
                "v": pa.array(range(rows), pa.int64()),
            }
        ),
        tags=["k"],
    )
    for _ in range(10):
        reader = engine.query_sql("db", "SELECT k, v FROM big ORDER BY v DESC", hydrate=True)
        values = [v for batch in reader for v in batch.column("v").to_pylist()]
        assert values == list(range(rows - 1, -1, -1))
        assert reader.schema.field("k").type == pa.string()


def test_time_range_scans_select_the_range_like_datafusion(engine: Engine) -> None:
    """A scan with only constant time bounds takes each batch's slice of the range (skipped,
    whole, binary-searched or, unsorted, filtered); the rows must equal DataFusion's filter."""
    # three batches of 10 000 rows, appended forward in time (kept apart, no upsert pass):
    # two sorted by time, the last one shuffled
    hosts = [f"h{i % 3}" for i in range(10_000)]
    for first in (0, 10_000):
        times = list(range(first, first + 10_000))
        engine.append("db", "m", _cpu(hosts, [float(x) for x in times], times))
    shuffled = [20_000 + (i * 7_919) % 10_000 for i in range(10_000)]
    engine.append("db", "m", _cpu(hosts, [float(x) for x in shuffled], shuffled))

    def both(where: str, columns: str = "*") -> tuple[pa.Table, pa.Table]:
        sql = f"SELECT {columns} FROM m WHERE {where}"
        fast = engine.query_sql("db", sql, hydrate=True).read_all()
        slow = engine.query_sql("db", sql + " ORDER BY time, usage", hydrate=True).read_all()
        return fast.sort_by([("time", "ascending"), ("usage", "ascending")]), slow

    def t(ns: int) -> str:
        return f"'1970-01-01T00:00:{ns // 10**9:02d}.{ns % 10**9:09d}Z'"

    wheres = [
        f"time >= {t(1000)} AND time < {t(2000)}",  # inside the sorted batch
        f"time >= {t(4000)} AND time < {t(16000)}",  # cuts both sorted batches
        f"time > {t(19000)} AND time <= {t(24000)}",  # cuts a sorted and the unsorted batch
        f"time >= {t(0)} AND time < {t(40000)}",  # every batch whole
        f"time = {t(7000)}",
        f"time >= {t(10000)} AND time < {t(20000)}",  # exactly the second batch
        f"time >= {t(50000)}",  # nothing
        f"time < {t(10)}",
        f"{t(3000)} <= time AND time < {t(3001)}",
    ]
    for where in wheres:
        fast, slow = both(where)
        assert fast.equals(slow), where
        assert fast.schema.field("host").type == pa.utf8()
    fast, slow = both(f"time >= {t(4000)} AND time < {t(6000)}", "usage, host, time")
    assert fast.equals(slow)
    assert fast.column_names == ["usage", "host", "time"]
    # other conditions (or a bound on an expression of time) keep DataFusion's filter
    fast, slow = both(f"time >= {t(4000)} AND time < {t(6000)} AND usage > 0")
    assert fast.equals(slow) and fast.num_rows == 2_000
    fast, slow = both(f"time >= {t(4000)} AND time < {t(6000)} OR time = {t(9)}")
    assert fast.equals(slow) and fast.num_rows == 2_001
    params = {"start": "1970-01-01T00:00:00.000004Z", "end": "1970-01-01T00:00:00.000006Z"}
    sql = "SELECT * FROM m WHERE time >= $start AND time < $end"
    bound = engine.query_sql("db", sql, params, hydrate=True).read_all()
    assert bound.sort_by([("time", "ascending"), ("usage", "ascending")]).equals(
        both(f"time >= {t(4000)} AND time < {t(6000)}")[1]
    )
