"""InfluxDB3Config: one small test per constructor form and per validation rule."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from influx_flight import DEFAULT_RECEIVE_WINDOW, ConfigurationError, InfluxDB3Config

TOKEN = "apiv3_s3cr3t-token-value"


def cfg(**kw: object) -> InfluxDB3Config:
    kw.setdefault("host", "http://127.0.0.1:8181")
    kw.setdefault("database", "db")
    return InfluxDB3Config(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "location", "write_base"),
    [
        ("https://h.example.com", "grpc+tls://h.example.com:443", "https://h.example.com:443"),
        (
            "https://h.example.com:8181",
            "grpc+tls://h.example.com:8181",
            "https://h.example.com:8181",
        ),
        ("grpc+tls://h:443", "grpc+tls://h:443", "https://h:443"),
        ("grpc+tcp://127.0.0.1:9999", "grpc+tcp://127.0.0.1:9999", "http://127.0.0.1:9999"),
        ("http://127.0.0.1:8181", "grpc+tcp://127.0.0.1:8181", "http://127.0.0.1:8181"),
        ("http://127.0.0.1:8181/", "grpc+tcp://127.0.0.1:8181", "http://127.0.0.1:8181"),
        ("localhost:8181", "grpc+tls://localhost:8181", "https://localhost:8181"),
        ("localhost", "grpc+tls://localhost:443", "https://localhost:443"),
        ("http://[::1]:8181", "grpc+tcp://[::1]:8181", "http://[::1]:8181"),
        (
            "https://proxy.example/influx",
            "grpc+tls://proxy.example:443",
            "https://proxy.example:443/influx",
        ),
    ],
)
def test_host_forms(host: str, location: str, write_base: str) -> None:
    c = cfg(host=host)
    assert c.flight_location == location
    assert c.write_base_url == write_base


@pytest.mark.parametrize(
    "host",
    [
        "",
        "   ",
        "ftp://h",
        "http://",
        "http://h:notaport",
        "http://h:99999",
        "https://h?x=1",
        "grpc+tls://h:443/path",
        "h ost:1",
        None,
        42,
    ],
)
def test_invalid_host_names_field_and_forms(host: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        cfg(host=host)
    assert info.value.field == "host"
    assert "grpc+tls://host:port" in str(info.value)


def test_host_with_credentials_is_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigurationError) as info:
        cfg(host="https://user:hunter2@h")
    assert "hunter2" not in str(info.value)
    assert info.value.field == "host"


def test_write_url_overrides_write_base() -> None:
    c = cfg(host="grpc+tcp://127.0.0.1:1", write_url="http://127.0.0.1:2/")
    assert c.write_base_url == "http://127.0.0.1:2"
    assert c.flight_location == "grpc+tcp://127.0.0.1:1"


@pytest.mark.parametrize("url", ["ftp://x", "not a url", "http://h?db=x", 5])
def test_invalid_write_url(url: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        cfg(write_url=url)
    assert info.value.field == "write_url"


def test_token_never_in_repr_str_or_pickle_repr() -> None:
    c = cfg(token=TOKEN)
    assert TOKEN not in repr(c)
    assert TOKEN not in str(c)
    assert "token=***" in repr(c)
    assert "token=None" in repr(cfg())
    assert TOKEN not in repr(c.as_dict())


def test_token_with_whitespace_refused_without_echo() -> None:
    with pytest.raises(ConfigurationError) as info:
        cfg(token=f"Bearer {TOKEN}")
    assert TOKEN not in str(info.value)
    assert info.value.field == "token"


def test_value_equality_hash_and_frozen() -> None:
    a = cfg(token="t", headers={"x-a": "1"})
    b = cfg(token="t", headers={"x-a": "1"})
    assert a == b
    assert hash(a) == hash(b)
    assert a != cfg(token="u", headers={"x-a": "1"})
    assert len({a, b}) == 1
    with pytest.raises(AttributeError):
        a.database = "other"  # type: ignore[misc]


def test_keyword_only() -> None:
    with pytest.raises(TypeError):
        InfluxDB3Config("http://h:1", "db")  # type: ignore[misc]


def test_auth_header_and_scheme() -> None:
    assert cfg(token="t").auth_header() == "Bearer t"
    assert cfg(token="t", auth_scheme="token").auth_header() == "Token t"
    assert cfg().auth_header() is None
    assert cfg(token="").auth_header() is None
    with pytest.raises(ConfigurationError) as info:
        cfg(auth_scheme="Basic")
    assert info.value.field == "auth_scheme"
    assert "'Bearer' or 'Token'" in str(info.value)


def test_grpc_and_http_headers() -> None:
    c = cfg(token="t", headers={"X-Trace": "abc"})
    assert c.grpc_headers() == [(b"x-trace", b"abc"), (b"authorization", b"Bearer t")]
    assert c.http_headers() == {"X-Trace": "abc", "Authorization": "Bearer t"}
    with pytest.raises(ConfigurationError, match="token="):
        cfg(headers={"Authorization": "Bearer x"})
    with pytest.raises(ConfigurationError):
        cfg(headers={"bad name": "x"})
    with pytest.raises(ConfigurationError):
        cfg(headers=[("a", "b")])


@pytest.mark.parametrize("name", ["query_timeout", "write_timeout"])
@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "abc", True, [1]])
def test_invalid_timeouts(name: str, bad: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        cfg(**{name: bad})
    assert info.value.field == name


def test_timeouts_accept_numbers_strings_and_none() -> None:
    c = cfg(query_timeout="12.5", write_timeout=None)
    assert c.query_timeout == 12.5
    assert c.write_timeout is None
    assert cfg().query_timeout == 300.0


def test_receive_window_is_bytes_or_none() -> None:
    assert cfg().receive_window == DEFAULT_RECEIVE_WINDOW == 4 * 1024 * 1024
    assert cfg(receive_window="1048576").receive_window == 1_048_576
    assert cfg(receive_window=None).receive_window is None
    assert cfg(receive_window="none").receive_window is None
    for bad in (0, 1024, 2**31, -1, True, 1.5, "4MiB"):
        with pytest.raises(ConfigurationError, match="receive_window") as info:
            cfg(receive_window=bad)
        assert info.value.field == "receive_window"


def test_verify_tls_and_ca_cert(tmp_path: Path) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    f = tmp_path / "ca.pem"
    f.write_text(pem)
    assert cfg(ca_cert=str(f)).ca_cert_pem() == pem.encode()
    assert cfg(ca_cert=f).ca_cert_pem() == pem.encode()
    assert cfg(ca_cert=pem).ca_cert_pem() == pem.encode()
    assert cfg(verify_tls="false").verify_tls is False
    with pytest.raises(ConfigurationError) as info:
        cfg(ca_cert=str(tmp_path / "missing.pem"))
    assert info.value.field == "ca_cert"
    with pytest.raises(ConfigurationError) as info:
        cfg(verify_tls="maybe")
    assert info.value.field == "verify_tls"


def test_database_required() -> None:
    with pytest.raises(ConfigurationError) as info:
        cfg(database="  ")
    assert info.value.field == "database"


def test_from_dict_same_keys() -> None:
    c = InfluxDB3Config.from_dict(
        {"host": "http://h:1", "database": "d", "token": "t", "query_timeout": 5}
    )
    assert c == cfg(host="http://h:1", database="d", token="t", query_timeout=5)
    assert InfluxDB3Config.from_dict(c.as_dict(include_token=True)) == c


def test_from_dict_unknown_and_missing_keys() -> None:
    with pytest.raises(ConfigurationError) as info:
        InfluxDB3Config.from_dict({"host": "h:1", "database": "d", "tokn": "x"})
    assert info.value.field == "tokn"
    assert "accepted keys are host, database, token" in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        InfluxDB3Config.from_dict({"host": "h:1"})
    assert info.value.field == "database"


def test_from_env_uses_influxdb3_cli_names() -> None:
    env = {
        "INFLUXDB3_HOST_URL": "http://127.0.0.1:8181",
        "INFLUXDB3_DATABASE_NAME": "sensors",
        "INFLUXDB3_AUTH_TOKEN": TOKEN,
        "INFLUXDB3_WRITE_URL": "http://127.0.0.1:8282",
        "INFLUXDB3_AUTH_SCHEME": "Token",
    }
    c = InfluxDB3Config.from_env(env)
    assert (c.database, c.token, c.auth_scheme) == ("sensors", TOKEN, "Token")
    assert c.write_base_url == "http://127.0.0.1:8282"
    assert InfluxDB3Config.from_env(env, database="other", token=None).database == "other"
    assert InfluxDB3Config.from_env({**env, "INFLUXDB3_TLS_NO_VERIFY": "1"}).verify_tls is False


def test_from_env_missing_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="INFLUXDB3_HOST_URL is not set"):
        InfluxDB3Config.from_env({"INFLUXDB3_DATABASE_NAME": "d"})
    with pytest.raises(ConfigurationError, match="INFLUXDB3_DATABASE_NAME is not set"):
        InfluxDB3Config.from_env({"INFLUXDB3_HOST_URL": "h:1"})


def test_with_options() -> None:
    c = cfg(token="t")
    d = c.with_options(database="other")
    assert d.database == "other"
    assert d.token == "t"
    assert c.database == "db"
    with pytest.raises(ConfigurationError) as info:
        c.with_options(databse="x")
    assert info.value.field == "databse"
    with pytest.raises(ConfigurationError):
        c.with_options(host="ftp://nope")


def test_pickle_round_trip() -> None:
    c = cfg(token="t", headers={"x": "y"}, write_url="http://h:2")
    assert pickle.loads(pickle.dumps(c)) == c


def test_scrub_removes_token() -> None:
    assert cfg(token=TOKEN).scrub(f"bad token {TOKEN}!") == "bad token ***!"


def test_public_reprs_use_public_module() -> None:
    assert InfluxDB3Config.__module__ == "influx_flight"
    assert ConfigurationError.__module__ == "influx_flight"


def test_import_is_light() -> None:
    """Airflow imports the config at DAG-parse time: no pyarrow, no pandas."""
    code = (
        "import sys, influx_flight, influx_flight.time\n"
        "from influx_flight import InfluxDB3Config, RetryPolicy, QueryError, call_with_retry\n"
        "from influx_flight import map_flight_errors, error_from_http, window_query\n"
        "from influx_flight.cli import build_parser\n"
        "build_parser()  # imports every subcommand module\n"
        "InfluxDB3Config(host='http://h:1', database='d')\n"
        "heavy = sorted(m for m in ('pyarrow', 'pandas', 'fsspec', 'adbc_driver_flightsql') "
        "if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


def test_headers_are_read_only() -> None:
    c = cfg(headers={"x-a": "1"})
    with pytest.raises(TypeError):
        c.headers["x-b"] = "2"  # type: ignore[index]
    assert c == cfg(headers={"x-a": "1"})
    assert c.with_options(database="o").headers == {"x-a": "1"}
