"""The operator's dashboard in a real browser: Debian's chromium driven by Playwright,
against a real `wasmlet serve` (one server and one browser for the module)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.api.test_reliability import dlq
from tests.support.build import wat
from tests.support.server import ServerProcess, running_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
FIXTURES = Path(__file__).parent.parent / "fixtures"
LOG_LINES = wat((FIXTURES / "log_lines.wat").read_text())  # traps on a payload "!..."
MIX = wat((FIXTURES / "mix.wat").read_text())  # answers "ok" to a payload "!..."
WAIT_MS = 30_000
pytestmark = pytest.mark.slow
expect.set_options(timeout=WAIT_MS)


def wait_until(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from running_server(tmp_path_factory.mktemp("dashboard"))


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the test run leaves its screenshots of the main pages."""
    path = tmp_path_factory.mktemp("screenshots")
    print(f"dashboard screenshots in {path}")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/ensure-test-tools installs it")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    yield opened
    context.close()


def sign_in(page: Page, srv: ServerProcess, key: str | None = None) -> None:
    page.goto(srv.url + "/dashboard")
    page.fill("input[name=key]", key or srv.service_key)
    page.click("text=Sign in")


def test_wrong_keys_are_refused_and_nothing_shows_without_a_session(
    page: Page, srv: ServerProcess
) -> None:
    for wrong in ("sk_not-the-key", srv.anon_key):
        sign_in(page, srv, wrong)
        expect(page.locator("[role=alert]")).to_have_text("Invalid service key.")
        assert page.url.startswith(srv.url + "/dashboard/login")
        assert not page.context.cookies()
    page.goto(srv.url + "/dashboard/failures")
    assert page.url.startswith(srv.url + "/dashboard/login?next=/dashboard/failures")
    assert page.locator("#content").count() == 0


def test_functions_page_shows_a_failing_function_and_its_request_logs(
    page: Page, srv: ServerProcess, shots: Path
) -> None:
    name = "checkout"
    assert srv.deploy(name, LOG_LINES, {"public": True}).status_code == 201
    assert srv.invoke(name, b"fine").status_code == 200
    failed = srv.invoke(name, b"!card declined for order 4711")
    assert failed.status_code == 500
    request_id = failed.json()["error"]["request_id"]
    assert srv.invoke(name, b"!card declined again").status_code == 500
    assert srv.invoke(name, b"fine").status_code == 200
    wait_until(lambda: invocations(srv, name) == 4, 30, "the history rows")

    sign_in(page, srv)
    page.wait_for_url("**/dashboard/functions")
    row = page.locator(f'tr[data-function="{name}"]')
    expect(row.locator("td.error-rate")).to_have_text("50.0%")  # 2 of 4 failed
    expect(row).to_contain_text("v1")
    page.screenshot(path=str(shots / "functions.png"), full_page=True)

    row.locator(f"a:text-is('{name}')").click()
    page.wait_for_url(f"**/dashboard/functions/{name}")
    lines = page.locator(f'#logs .line[data-request-id="{request_id}"]')
    expect(lines.filter(has_text="card declined for order 4711")).to_have_count(1)
    expect(page.locator(".chart-svg rect").first).to_be_visible()
    assert srv.invoke(name, b"!a line written while the page is open").status_code == 500
    expect(page.locator("#logs")).to_contain_text("a line written while the page is open")
    page.screenshot(path=str(shots / "function.png"), full_page=True)

    page.fill("header input[name=request_id]", request_id)
    page.click("header .search button")
    page.wait_for_url(f"**/dashboard/requests/{request_id}")
    expect(page.locator("#logs")).to_contain_text("card declined for order 4711")
    expect(page.locator("table")).to_contain_text("function_error")
    page.screenshot(path=str(shots / "request.png"), full_page=True)


def invocations(srv: ServerProcess, name: str) -> int:
    response = httpx.get(
        f"{srv.url}/functions/v1/functions/{name}/invocations", headers=srv.service_headers()
    )
    return len(response.json()["invocations"]) if response.status_code == 200 else 0


def test_redrive_a_dead_letter_after_a_fix(page: Page, srv: ServerProcess, shots: Path) -> None:
    name = "billing"
    config = {"public": True, "retry": {"max_retries": 0}}
    assert srv.deploy(name, LOG_LINES, config).status_code == 201
    queued = srv.invoke(name, b"!charge", headers={"prefer": "respond-async"})
    assert queued.status_code == 202
    wait_until(lambda: dlq(srv, function=name)["total"] == 1, 60, "the dead letter")
    entry_id = dlq(srv, function=name)["entries"][0]["id"]
    assert srv.deploy(name, MIX, config).status_code == 200  # the fix: v2 answers "ok"

    sign_in(page, srv)
    page.goto(srv.url + "/dashboard/failures")
    page.fill("input[name=function]", name)
    page.click("text=Filter")
    row = page.locator(f'tr[data-entry="{entry_id}"]')
    expect(row).to_contain_text("function_error")
    row.locator("a.mono").click()
    expect(page.locator(".payload")).to_have_text("!charge")
    page.screenshot(path=str(shots / "failures.png"), full_page=True)

    row.locator("button.retry").click()
    expect(row).to_have_count(0)
    assert dlq(srv, function=name)["total"] == 0
    wait_until(lambda: job_status(srv, entry_id) == "done", 60, "the redriven job to succeed")


def job_status(srv: ServerProcess, job_id: str) -> str:
    response = httpx.get(
        f"{srv.url}/functions/v1/invocations/{job_id}", headers=srv.service_headers()
    )
    status: str = response.json()["status"]
    return status


def test_pause_a_schedule_and_see_the_cluster(page: Page, srv: ServerProcess, shots: Path) -> None:
    name = "nightly"
    trigger = {"type": "schedule", "cron": "0 3 1 1 *", "timezone": "UTC"}
    assert srv.deploy(name, MIX, {"public": True}, [trigger]).status_code == 201

    sign_in(page, srv)
    page.goto(srv.url + "/dashboard/schedules")
    row = page.locator(f'tr[data-schedule^="{name}/"]')
    row.locator("button.pause").click()
    expect(row.locator(".badge")).to_have_text("paused")
    page.screenshot(path=str(shots / "schedules.png"), full_page=True)
    listing = httpx.get(srv.url + "/functions/v1/schedules", headers=srv.service_headers())
    (schedule,) = [s for s in listing.json()["schedules"] if s["function"] == name]
    assert schedule["paused"] is True

    page.goto(srv.url + "/dashboard/cluster")
    expect(page.locator("text=(this one)")).to_be_visible()
    page.screenshot(path=str(shots / "cluster.png"), full_page=True)


DASHBOARD_PAGES = [
    "/dashboard", "/dashboard/functions", "/dashboard/functions/checkout",
    "/dashboard/failures", "/dashboard/schedules", "/dashboard/cluster",
    "/dashboard/requests/abc", "/dashboard/search?request_id=abc",
]  # fmt: skip
DATA_ROUTES = [
    "/functions/v1/stats?limit=10", "/functions/v1/functions", "/functions/v1/functions/checkout",
    "/functions/v1/functions/checkout/timeline", "/functions/v1/functions/checkout/logs",
    "/functions/v1/functions/checkout/invocations", "/functions/v1/requests/abc",
    "/functions/v1/breakers", "/functions/v1/dlq", "/functions/v1/alerts",
    "/functions/v1/schedules", "/functions/v1/nodes", "/functions/v1/secrets",
]  # fmt: skip


def test_without_a_session_pages_redirect_and_data_is_refused(srv: ServerProcess) -> None:
    forged = {"wasmlet_session": "9999999999.abc.def"}
    for cookies in ({}, forged):
        with httpx.Client(base_url=srv.url, cookies=cookies) as client:
            for path in DASHBOARD_PAGES:
                response = client.get(path)
                assert response.status_code == 303, path
                assert response.headers["location"].startswith("/dashboard/login"), path
            for path in DATA_ROUTES:
                assert client.get(path).status_code == 401, path
                assert client.get(path, headers=srv.anon_headers()).status_code == 401, path


def test_a_session_needs_its_csrf_token_to_change_anything(srv: ServerProcess) -> None:
    with httpx.Client(base_url=srv.url) as client:
        refused = client.post("/dashboard/login", data={"key": srv.anon_key})
        assert refused.status_code == 401 and "wasmlet_session" not in client.cookies
        signed = client.post("/dashboard/login", data={"key": srv.service_key})
        assert signed.status_code == 303
        assert "httponly" in signed.headers["set-cookie"].lower()
        assert "samesite=strict" in signed.headers["set-cookie"].lower()
        assert srv.service_key not in signed.headers["location"]
        assert client.get("/functions/v1/dlq").status_code == 200
        no_token = client.post("/functions/v1/dlq/retry")
        assert no_token.status_code == 401
        assert no_token.json()["error"]["type"] == "unauthorized"
        assert "CSRF" in no_token.json()["error"]["message"]
        html = client.get("/dashboard/failures").text
        token = html.split('name="csrf-token" content="')[1].split('"')[0]
        ok = client.post("/functions/v1/dlq/retry", headers={"x-csrf-token": token})
        assert ok.status_code == 200, ok.text


def test_the_functions_figures_come_a_page_at_a_time(srv: ServerProcess) -> None:
    for name in ("page-a", "page-b", "page-c"):
        assert srv.deploy(name, MIX, {"public": True}).status_code in (200, 201)
    seen: list[str] = []
    after = ""
    for _ in range(20):
        response = httpx.get(
            srv.url + "/functions/v1/stats",
            params={"limit": 2, "after": after},
            headers=srv.service_headers(),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["functions"]) <= 2
        seen += [f["name"] for f in body["functions"]]
        if body["next_after"] is None:
            break
        after = body["next_after"]
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert {"page-a", "page-b", "page-c"} <= set(seen)
    unpaged = httpx.get(srv.url + "/functions/v1/stats", headers=srv.service_headers())
    assert "next_after" not in unpaged.json()
