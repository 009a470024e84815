"""The connection form in a real browser: `airflow api-server` + headless Chromium (Playwright).

Creates an "InfluxDB 3 (Arrow Flight)" connection through the UI form, presses Test and sees the
success message, then saves a wrong token and sees the clear failure message. Screenshots go to
``test-artifacts/airflow-ui/``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow")
pytest.importorskip("playwright")

from af_testdata import AIRFLOW_BIN, REPO, home_line_protocol

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def api_server(airflow_db: None, tmp_path: Path) -> Iterator[str]:
    """`airflow api-server` on the session's metadata DB, connection testing enabled, and the
    SimpleAuthManager treating every visitor as admin (no login page in the way)."""
    port = _free_port()
    env = {
        **os.environ,
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__PORT": str(port),
    }
    log = (tmp_path / "api-server.log").open("w")
    proc = subprocess.Popen(
        [str(AIRFLOW_BIN), "api-server", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, (tmp_path / "api-server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(base + "/api/v2/monitor/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "api-server did not start in 180 s"
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _toast_text(page: Any, title: str, shot: Path | None = None) -> str:
    """The text of the toast whose title is ``title`` (waits for it; optionally screenshots it,
    since a long message can run past the bottom of the page screenshot)."""
    toast = page.get_by_role("status").filter(has_text=title).last
    toast.wait_for(timeout=60_000)
    if shot is not None:
        toast.screenshot(path=str(shot))
    return toast.inner_text()


def test_connection_form_create_test_and_wrong_token(
    api_server: str, standin: Any, influx_db: str
) -> None:
    from playwright.sync_api import sync_playwright

    shots = REPO / "test-artifacts" / "airflow-ui"
    shots.mkdir(parents=True, exist_ok=True)
    standin.write_lp(influx_db, home_line_protocol(), precision="s")
    flight_host, flight_port = standin.flight_uri.rsplit(":", 1)
    conn_id = f"influx_ui_{influx_db[-8:]}"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(api_server + "/connections")
            page.get_by_role("button", name="Add Connection").click()
            page.locator("input[name=connection_id]").fill(conn_id)
            combo = page.get_by_role("combobox")
            combo.click()
            combo.fill("InfluxDB 3")
            page.get_by_role("option", name="InfluxDB 3 (Arrow Flight)").click()

            # The relabelled standard fields (host URL, token, database) and a hidden login.
            for label in ("Host URL", "Token", "Port", "Database"):
                assert page.get_by_text(label, exact=True).first.is_visible(), label
            assert page.locator("input[name=login]").count() == 0
            page.locator("input[name=host]").fill(flight_host)
            page.locator("input[name=port]").fill(flight_port)
            page.locator("input[name=password]").fill(standin.token)
            page.locator("input[name=schema]").fill(influx_db)
            page.screenshot(path=str(shots / "01-standard-fields.png"))

            page.get_by_role("button", name="Extra Fields", exact=True).click()
            for label in ("Query language", "Query protocol", "Verify TLS", "Write URL"):
                assert page.get_by_text(label).first.is_visible(), label
            page.locator("#element_write_url").fill(standin.http_url)
            page.screenshot(path=str(shots / "02-extra-fields.png"), full_page=True)
            page.get_by_role("button", name="Save").click()
            _toast_text(page, "Create Connection Request Submitted")

            row = page.get_by_role("row").filter(has_text=conn_id)
            row.get_by_role("button", name="Test Connection").click()
            success = _toast_text(
                page, "Test Connection Successful", shots / "03-toast-success.png"
            )
            page.screenshot(path=str(shots / "03-page-success.png"))
            assert f"Connected to InfluxDB 3 at {standin.flight_uri}" in success, success
            assert f"database '{influx_db}'" in success

            # A wrong token: saved through the edit form, then the test explains what is wrong.
            wrong = "apiv3_this-is-not-the-right-token"
            row.get_by_role("button", name="Edit Connection").click()
            page.locator("input[name=password]").fill(wrong)
            page.get_by_role("button", name="Save").click()
            page.wait_for_timeout(1000)
            row.get_by_role("button", name="Test Connection").click()
            failure = _toast_text(
                page, "Test Connection Failed", shots / "04-toast-wrong-token.png"
            )
            page.screenshot(path=str(shots / "04-page-wrong-token.png"))
            assert "AuthenticationError" in failure, failure
            assert "Check the token" in failure
            assert wrong not in failure and standin.token not in failure
        finally:
            browser.close()
