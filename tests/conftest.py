"""Suite-wide setup: isolated homes for Airflow and Dagster, and the stand-in server fixtures."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Airflow reads its configuration at first import, so its home must be private before any test
# module imports it. Dagster likewise gets a throwaway DAGSTER_HOME.
_HOMES = Path(tempfile.mkdtemp(prefix="influx-orch-tests-"))
os.environ["AIRFLOW_HOME"] = str(_HOMES / "airflow")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOMES / 'airflow' / 'airflow.db'}"
os.environ["DAGSTER_HOME"] = str(_HOMES / "dagster")
(_HOMES / "airflow").mkdir(parents=True, exist_ok=True)
(_HOMES / "dagster").mkdir(parents=True, exist_ok=True)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# ---------------------------------------------------------------------------------------------
# Stand-in server fixtures (owned by the server-engine helper)
# ---------------------------------------------------------------------------------------------

from collections.abc import Callable, Iterator  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

STANDIN_TOKEN = "apiv3_test-token-for-the-stand-in"


@pytest.fixture(scope="session")
def standin(influxdb3_server: Any) -> Any:
    """One stand-in server for the session: auth on (token ``STANDIN_TOKEN``), fast WAL flush.

    The ``influxdb3_server`` fixture of the package's own pytest plugin
    (``influx_flight.testing``), with the token set in ``pyproject.toml``. Tests must use
    their own database names (e.g. derived from the test name, as ``influxdb3_database``
    does) so they do not see each other's data.
    """
    assert influxdb3_server.token == STANDIN_TOKEN, "influxdb3_token in pyproject.toml"
    return influxdb3_server


@pytest.fixture
def standin_factory(influxdb3_server_factory: Callable[..., Any]) -> Callable[..., Any]:
    """Build more stand-in servers with other options; all are stopped at teardown.

    ``standin_factory(without_auth=True, data_dir=str(tmp_path), ...)`` returns a started
    server (the plugin's ``influxdb3_server_factory``; ``wal_flush_interval`` 0.01 s).
    """
    return influxdb3_server_factory


@pytest.fixture
def flight_client(standin: Any) -> Iterator[Any]:
    """A pyarrow FlightClient connected to the session stand-in."""
    import pyarrow.flight as flight

    client = flight.FlightClient(standin.flight_uri)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def auth_options() -> Any:
    """FlightCallOptions carrying ``Bearer STANDIN_TOKEN``."""
    import pyarrow.flight as flight

    return flight.FlightCallOptions(
        headers=[(b"authorization", f"Bearer {STANDIN_TOKEN}".encode())]
    )


# ---------------------------------------------------------------------------------------------
# S3 offline (owned by the dagster helper): moto's S3 server with credentials enforced
# ---------------------------------------------------------------------------------------------


class S3Server:
    """moto's server on 127.0.0.1 whose requests must be signed by `key_id` / `secret`."""

    def __init__(self, endpoint: str, key_id: str, secret: str) -> None:
        self.endpoint = endpoint
        self.key_id = key_id
        self.secret = secret

    def client(self, region: str = "us-east-1") -> Any:
        """A boto3 S3 client signing with the server's credentials."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=self.key_id,
            aws_secret_access_key=self.secret,
        )


def _moto_api(endpoint: str, path: str, body: bytes = b"") -> bytes:
    import urllib.request

    request = urllib.request.Request(
        f"{endpoint}/moto-api/{path}",
        data=body,
        method="POST",
        headers={"Content-Type": "text/plain"},  # the body is read raw, not as a form
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


@pytest.fixture
def s3_server() -> Iterator[S3Server]:
    """moto's S3 in server mode (a real HTTP endpoint, ephemeral port) that checks signatures.

    Three unauthenticated calls create an IAM user allowed `s3:*` and its access key; every
    later request must be signed with that key (moto's `reset-auth`), so a test can show that
    the credentials it configured are the ones used. moto's state is per process: reset at
    the start and the end.
    """
    import json

    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    previous = b"inf"
    try:
        _moto_api(endpoint, "reset")
        reply = json.loads(_moto_api(endpoint, "reset-auth", b"3"))
        previous = str(reply["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]).encode()
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        iam.create_user(UserName="dagster")
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="dagster", PolicyName="s3", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="dagster")["AccessKey"]
        yield S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        try:
            _moto_api(endpoint, "reset-auth", previous)
            _moto_api(endpoint, "reset")
        finally:
            server.stop()
