"""`ParquetIOManager` on S3 with credentials from `EnvVar`, against moto's S3 server.

The user's scenario: `cloud_storage_options={"key": dg.EnvVar(...)}` handed fsspec the dict
`{'env': ...}` as the credential. Here the typed `S3Config` takes both secrets as `EnvVar`s,
under names botocore does not read by itself (its own `AWS_*` variables hold a wrong key), and
moto checks every request's signature: a partition is written to and read back from the
bucket only with the credentials the EnvVars hold, a wrong secret fails the run, and neither
secret appears in logs, events, metadata, errors or reprs.
"""

import io
import logging
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dagster_influx import ParquetIOManager, S3Config

pytest.importorskip("s3fs")

DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-05")
KEY_VAR, SECRET_VAR = "DAGSTER_TEST_S3_KEY_ID", "DAGSTER_TEST_S3_SECRET"


@dg.asset(partitions_def=DAILY, io_manager_key="parquet_io")
def readings(context: dg.AssetExecutionContext) -> pa.Table:
    start = context.partition_time_window.start
    return pa.table({"time": pa.array([start, start], pa.timestamp("us", "UTC")), "v": [1.5, 2.5]})


@dg.asset(partitions_def=DAILY, ins={"readings": dg.AssetIn(input_manager_key="parquet_io")})
def total(readings: pa.Table) -> float:
    return sum(readings.column("v").to_pylist())


@pytest.fixture
def s3_env(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The credentials only in our variables; botocore's own chain would sign with a bad key."""
    monkeypatch.setenv(KEY_VAR, s3_server.key_id)
    monkeypatch.setenv(SECRET_VAR, s3_server.secret)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    s3_server.client().create_bucket(Bucket="dagster-exports")
    return s3_server


def _manager(endpoint: str) -> ParquetIOManager:
    return ParquetIOManager(
        base_dir="s3://dagster-exports/lake",
        storage=S3Config(
            access_key_id=dg.EnvVar(KEY_VAR),
            secret_access_key=dg.EnvVar(SECRET_VAR),
            region="us-east-1",
            endpoint_url=endpoint,
        ),
    )


def _everything_said(result: Any, instance: dg.DagsterInstance, captured: str) -> str:
    """Every event of the run as stored, its metadata and messages, and the captured output."""
    records = instance.all_logs(result.run_id)
    return "\n".join(
        [captured, *(repr(r) for r in records), *(str(r.dagster_event) for r in records)]
    )


def _info_and_above(caplog: pytest.LogCaptureFixture) -> str:
    # botocore's own DEBUG lines print the Authorization header, whose credential scope
    # names the access key id (not the secret: AWS treats key ids as identifiers)
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)


def test_envvar_credentials_write_and_read_a_partition_on_s3(
    s3_env: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    manager = _manager(s3_env.endpoint)
    instance = dg.DagsterInstance.ephemeral()
    with caplog.at_level(logging.DEBUG):
        result = dg.materialize(
            [readings, total],
            resources={"parquet_io": manager},
            partition_key="2024-01-02",
            instance=instance,
        )
    assert result.success
    assert result.output_for_node("total") == 4.0  # read back from the bucket

    stored = s3_env.client().get_object(
        Bucket="dagster-exports", Key="lake/readings/2024-01-02.parquet"
    )
    table = pq.read_table(io.BytesIO(stored["Body"].read()))
    assert table.column("v").to_pylist() == [1.5, 2.5]
    (mat,) = result.asset_materializations_for_node("readings")
    assert "s3://dagster-exports/lake/readings/2024-01-02.parquet" in str(mat.metadata)

    output = "".join(capsys.readouterr())
    everything = _everything_said(result, instance, caplog.text + output)
    assert s3_env.secret not in everything  # DEBUG included
    dagster_said = _everything_said(result, instance, _info_and_above(caplog) + output)
    for credential in (s3_env.secret, s3_env.key_id):
        assert credential not in dagster_said
        assert credential not in repr(manager) and credential not in str(manager)
        assert credential not in repr(dict(mat.metadata))


def test_a_wrong_secret_in_the_variable_fails_the_run_without_showing_it(
    s3_env: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = "wrong-secret-0123456789abcdefghijklmnopqrst"
    monkeypatch.setenv(SECRET_VAR, wrong)
    instance = dg.DagsterInstance.ephemeral()
    with caplog.at_level(logging.DEBUG):
        result = dg.materialize(
            [readings],
            resources={"parquet_io": _manager(s3_env.endpoint)},
            partition_key="2024-01-03",
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success  # the signature is checked: the EnvVar's value is what signs
    listing = s3_env.client().list_objects_v2(Bucket="dagster-exports")
    assert listing.get("KeyCount", 0) == 0  # nothing written
    said = _everything_said(result, instance, caplog.text + "".join(capsys.readouterr()))
    assert "SignatureDoesNotMatch" in said or "Forbidden" in said or "AccessDenied" in said
    assert wrong not in said
    assert s3_env.secret not in said
