"""Deterministic synthetic sensor data for the demo, the examples and the benchmarks.

Table `sensors`: tags `room`, `sensor`; fields `temperature`, `humidity` (float64) and `co2`
(int64); one point per series every `interval_s` seconds. Values come from a seeded numpy
generator (daily cycles plus noise), so the same arguments always give the same data. Built
vectorised as Arrow batches with dictionary-encoded tags and appended straight to the engine:
a million points load in about a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

__all__ = [
    "DEFAULT_START",
    "HOME_TABLE",
    "DemoSpec",
    "generate_batches",
    "generate_home_batches",
    "load_demo_data",
    "load_home_data",
]

#: Fixed default start so runs are reproducible (midnight UTC).
DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)

ROOM_NAMES = [
    "Kitchen",
    "Living Room",
    "Bedroom",
    "Office",
    "Bathroom",
    "Hallway",
    "Garage",
    "Basement",
    "Attic",
    "Nursery",
    "Dining Room",
    "Laundry",
]
_BATCH_ROWS = 1_000_000
#: The Get-started guide's table shape (tag `room`; fields `temp`, `hum`, `co`), at the demo's
#: resolution: what the Airflow example DAGs downsample.
HOME_TABLE = "home"
_DAY_S = 86_400


@dataclass(frozen=True)
class DemoSpec:
    """Size and shape of the demo data set."""

    rooms: int = 4
    sensors: int = 2  # per room
    days: float = 1.0
    interval_s: int = 10
    start: datetime = DEFAULT_START
    table: str = "sensors"
    seed: int = 42

    def __post_init__(self) -> None:
        if self.rooms < 1 or self.sensors < 1:
            raise ValueError("rooms and sensors must be >= 1")
        if self.days <= 0 or self.interval_s <= 0:
            raise ValueError("days and interval_s must be > 0")

    @property
    def points_per_series(self) -> int:
        return max(1, int(self.days * _DAY_S // self.interval_s))

    @property
    def series(self) -> int:
        return self.rooms * self.sensors

    @property
    def total_points(self) -> int:
        return self.points_per_series * self.series

    @property
    def start_ns(self) -> int:
        start = self.start if self.start.tzinfo else self.start.replace(tzinfo=UTC)
        return int(start.timestamp()) * 1_000_000_000

    @classmethod
    def for_points(cls, points: int, rooms: int = 4, sensors: int = 2, **kw: object) -> DemoSpec:
        """A spec with about `points` points in total (days derived from the series count)."""
        interval = int(kw.pop("interval_s", 10))  # type: ignore[call-overload]
        per_series = max(1, points // (rooms * sensors))
        days = per_series * interval / _DAY_S
        return cls(rooms=rooms, sensors=sensors, days=days, interval_s=interval, **kw)  # type: ignore[arg-type]


def _room_names(n: int) -> list[str]:
    names = list(ROOM_NAMES[:n])
    names.extend(f"Room {i + 1}" for i in range(len(names), n))
    return names


def generate_batches(spec: DemoSpec) -> Iterator[pa.RecordBatch]:
    """Yield the data as record batches (time-major: each timestamp holds every series)."""
    rooms = _room_names(spec.rooms)
    sensor_names = [f"s{j + 1:02d}" for j in range(spec.sensors)]
    n_series = spec.series
    room_idx = np.repeat(np.arange(spec.rooms, dtype=np.int32), spec.sensors)
    sensor_idx = np.tile(np.arange(spec.sensors, dtype=np.int32), spec.rooms)
    rng = np.random.default_rng(spec.seed)
    base_temp = rng.uniform(18.0, 24.0, n_series)
    base_hum = rng.uniform(30.0, 50.0, n_series)
    base_co2 = rng.uniform(400.0, 700.0, n_series)
    phase = rng.uniform(0, 2 * np.pi, n_series)
    total_t = spec.points_per_series
    step = max(1, _BATCH_ROWS // n_series)
    room_dict = pa.array(rooms, pa.string())
    sensor_dict = pa.array(sensor_names, pa.string())
    for t0 in range(0, total_t, step):
        t1 = min(total_t, t0 + step)
        # the generator is seeded per block so any block is reproducible on its own
        block_rng = np.random.default_rng([spec.seed, t0])
        steps = np.arange(t0, t1, dtype=np.int64)
        seconds = steps * spec.interval_s
        day = 2 * np.pi * (seconds % _DAY_S) / _DAY_S
        cycle = np.sin(day[:, None] + phase[None, :])  # (time, series)
        shape = cycle.shape
        temperature = base_temp + 2.5 * cycle + block_rng.normal(0, 0.3, shape)
        humidity = base_hum - 5.0 * cycle + block_rng.normal(0, 1.0, shape)
        co2 = base_co2 + 150.0 * np.clip(cycle, 0, None) + block_rng.normal(0, 20.0, shape)
        times = spec.start_ns + np.repeat(seconds * 1_000_000_000, n_series)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(np.round(co2.ravel()).astype(np.int64)),
                pa.array(np.round(humidity.ravel(), 2)),
                pa.DictionaryArray.from_arrays(pa.array(np.tile(room_idx, t1 - t0)), room_dict),
                pa.DictionaryArray.from_arrays(pa.array(np.tile(sensor_idx, t1 - t0)), sensor_dict),
                pa.array(np.round(temperature.ravel(), 2)),
                pa.array(times, pa.timestamp("ns")),
            ],
            names=["co2", "humidity", "room", "sensor", "temperature", "time"],
        )


def load_demo_data(engine: object, database: str = "demo", spec: DemoSpec | None = None) -> int:
    """Append the demo data set to `engine` (bypassing the WAL); returns the rows loaded."""
    spec = spec or DemoSpec()
    rows = 0
    for batch in generate_batches(spec):
        engine.append(database, spec.table, batch, tags=["room", "sensor"])  # type: ignore[attr-defined]
        rows += batch.num_rows
    return rows


def generate_home_batches(spec: DemoSpec) -> Iterator[pa.RecordBatch]:
    """The `home` table (one series per room) over the same period and interval as `spec`.

    Shaped like InfluxDB's Get-started sample: `temp` around 21-23 °C, `hum` around 35-37 %
    and an integer `co` (ppm) that rises during the day.
    """
    rooms = _room_names(spec.rooms)
    rng = np.random.default_rng([spec.seed, 7])
    base_temp = rng.uniform(20.5, 22.5, spec.rooms)
    base_hum = rng.uniform(35.0, 37.0, spec.rooms)
    phase = rng.uniform(0, 2 * np.pi, spec.rooms)
    room_dict = pa.array(rooms, pa.string())
    room_idx = np.arange(spec.rooms, dtype=np.int32)
    total_t = spec.points_per_series
    step = max(1, _BATCH_ROWS // spec.rooms)
    for t0 in range(0, total_t, step):
        t1 = min(total_t, t0 + step)
        block_rng = np.random.default_rng([spec.seed, 7, t0])
        seconds = np.arange(t0, t1, dtype=np.int64) * spec.interval_s
        day = 2 * np.pi * (seconds % _DAY_S) / _DAY_S
        cycle = np.sin(day[:, None] + phase[None, :])
        shape = cycle.shape
        temp = base_temp + 1.0 * cycle + block_rng.normal(0, 0.1, shape)
        hum = base_hum + 0.4 * cycle + block_rng.normal(0, 0.05, shape)
        co = np.clip(
            np.round(15 * np.clip(cycle, 0, None) + block_rng.normal(0, 1.0, shape)), 0, None
        )
        times = spec.start_ns + np.repeat(seconds * 1_000_000_000, spec.rooms)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(co.ravel().astype(np.int64)),
                pa.array(np.round(hum.ravel(), 1)),
                pa.DictionaryArray.from_arrays(pa.array(np.tile(room_idx, t1 - t0)), room_dict),
                pa.array(np.round(temp.ravel(), 1)),
                pa.array(times, pa.timestamp("ns")),
            ],
            names=["co", "hum", "room", "temp", "time"],
        )


def load_home_data(engine: object, database: str = "demo", spec: DemoSpec | None = None) -> int:
    """Append the `home` table (see :func:`generate_home_batches`); returns the rows loaded."""
    spec = spec or DemoSpec()
    rows = 0
    for batch in generate_home_batches(spec):
        engine.append(database, HOME_TABLE, batch, tags=["room"])  # type: ignore[attr-defined]
        rows += batch.num_rows
    return rows
