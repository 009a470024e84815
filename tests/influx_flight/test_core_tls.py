"""TLS options reach the gRPC channel: CA bundle (PEM or path), verification on and off.

A real pyarrow Flight server with a freshly generated self-signed certificate on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from influx_flight import (
    InfluxDB3Client,
    InfluxDB3Config,
    RetryPolicy,
    ServerUnavailableError,
    dbapi_options,
)

NO_RETRY = RetryPolicy(max_attempts=1)


def self_signed() -> tuple[bytes, bytes]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


class TlsServer(flight.FlightServerBase):
    def __init__(self, cert: bytes, key: bytes) -> None:
        super().__init__(
            "grpc+tls://127.0.0.1:0", tls_certificates=[flight.CertKeyPair(cert=cert, key=key)]
        )
        self.tickets: list[dict] = []

    def do_get(
        self, context: flight.ServerCallContext, ticket: flight.Ticket
    ) -> flight.RecordBatchStream:
        self.tickets.append(json.loads(ticket.ticket))
        return flight.RecordBatchStream(pa.table({"one": [1]}))


@pytest.fixture(scope="module")
def tls() -> Iterator[tuple[TlsServer, bytes]]:
    cert, key = self_signed()
    server = TlsServer(cert, key)
    yield server, cert
    server.shutdown()


def test_ca_cert_as_pem(tls: tuple[TlsServer, bytes]) -> None:
    server, cert = tls
    cfg = InfluxDB3Config(host=f"https://localhost:{server.port}", database="db", ca_cert=cert)
    assert cfg.flight_location == f"grpc+tls://localhost:{server.port}"
    with InfluxDB3Client(cfg, retry_policy=NO_RETRY) as client:
        assert client.query("SELECT 1").to_records() == [{"one": 1}]


def test_ca_cert_as_path(tls: tuple[TlsServer, bytes], tmp_path: Path) -> None:
    server, cert = tls
    path = tmp_path / "ca.pem"
    path.write_bytes(cert)
    cfg = InfluxDB3Config(host=f"localhost:{server.port}", database="db", ca_cert=str(path))
    with InfluxDB3Client(cfg, retry_policy=NO_RETRY) as client:
        assert client.query("SELECT 1").to_table().num_rows == 1


def test_untrusted_certificate_fails_clearly(tls: tuple[TlsServer, bytes]) -> None:
    server, _ = tls
    cfg = InfluxDB3Config(host=f"https://localhost:{server.port}", database="db")
    with (
        InfluxDB3Client(cfg, retry_policy=NO_RETRY) as client,
        pytest.raises(ServerUnavailableError, match=f"localhost:{server.port}"),
    ):
        client.query("SELECT 1", timeout=10)


def test_verify_tls_false(tls: tuple[TlsServer, bytes]) -> None:
    server, _ = tls
    cfg = InfluxDB3Config(host=f"https://localhost:{server.port}", database="db", verify_tls=False)
    with InfluxDB3Client(cfg, retry_policy=NO_RETRY) as client:
        assert client.query("SELECT 1").to_records() == [{"one": 1}]


def test_flightsql_options_carry_tls_auth_and_database() -> None:
    cert = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    cfg = InfluxDB3Config(
        host="https://h:443",
        database="db",
        token="t",
        verify_tls=False,
        ca_cert=cert,
        headers={"X-Org": "o"},
    )
    opts = dbapi_options(cfg, timeout=5, language="influxql")
    assert opts == {
        "adbc.flight.sql.rpc.call_header.database": "db",
        "adbc.flight.sql.authorization_header": "Bearer t",
        "adbc.flight.sql.rpc.call_header.x-org": "o",
        "adbc.flight.sql.rpc.call_header.x-influxdata-query-language": "influxql",
        "adbc.flight.sql.client_option.tls_skip_verify": "true",
        "adbc.flight.sql.client_option.tls_root_certs": cert.decode(),
        "adbc.flight.sql.rpc.timeout_seconds.query": "5.0",
        "adbc.flight.sql.rpc.timeout_seconds.fetch": "5.0",
    }
    plain = dbapi_options(InfluxDB3Config(host="http://h:1", database="d"), database="other")
    assert plain == {"adbc.flight.sql.rpc.call_header.database": "other"}
