"""The dashboard in headless Chromium: trigger, watch, steer, read the timeline, and prove that
stored markup stays text.

Needs Debian's chromium (``scripts/install-browser``). Screenshots go to a temp dir, or to
docs/screenshots/ with ``PERDURE_UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

import perdure

from .http_support import (
    PAYLOADS,
    TOKEN,
    WORKFLOWS,
    XSS,
    XSS_IMG,
    Greeter,
    Server,
    running_server,
    wait_for_status,
)

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("PERDURE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]

_charges: dict[str, int] = {}


class Checkout(perdure.WorkflowEntrypoint):
    """The screenshot subject: a retried step, a sleep and an event wait."""

    async def run(self, event: perdure.WorkflowEvent, step: perdure.WorkflowStep) -> Any:
        async def fetch_order() -> dict[str, Any]:
            return {"order": event.payload["order"], "items": 3, "total": "42.00 EUR"}

        async def charge_card() -> dict[str, str]:
            calls = _charges.get(event.instance_id, 0) + 1
            _charges[event.instance_id] = calls
            if calls < 3:
                raise ConnectionError("payment gateway timed out")
            return {"charge": "ch_1P2x", "status": "captured"}

        async def send_receipt() -> str:
            return "receipt sent to ada@example.com"

        order = await step.do("fetch order", fetch_order)
        await step.do(
            "charge card",
            charge_card,
            retries={"limit": 4, "delay": "250 ms", "backoff": "constant"},
        )
        await step.sleep("cool-down", "1 second")
        await step.do("send receipt", send_receipt)
        delivery = await step.wait_for_event(
            "delivery confirmed", type="delivered", timeout="2 days"
        )
        return {"order": order["order"], "delivered": delivery.payload}


class Many(perdure.WorkflowEntrypoint):
    """More steps than the timeline draws."""

    async def run(self, event: perdure.WorkflowEvent, step: perdure.WorkflowStep) -> Any:
        async def noop() -> None:
            return None

        for i in range(420):
            await step.do(f"item {i}", noop)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    database = str(tmp_path_factory.mktemp("browser") / "perdure.db")
    workflows = {**WORKFLOWS, "checkout": Checkout, "lister": Greeter, "many": Many}
    with running_server(database, workflows=workflows) as running:
        yield running


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing; run scripts/install-browser first")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
    yield browser
    browser.close()


@dataclass
class Watch:
    """Everything the page did that a safe dashboard never does."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.csp.append(message.text)


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def page(browser: Browser, watch: Watch) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.on("dialog", watch.on_dialog)
    page.on("pageerror", lambda exc: watch.errors.append(str(exc)))
    page.on("console", watch.on_console)
    yield page
    context.close()
    assert watch.dialogs == [], "a browser dialog opened: stored data ran as script"
    assert watch.errors == [], watch.errors
    assert watch.csp == [], watch.csp


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def screenshot_path(name: str, tmp_path: Path) -> Path:
    if os.environ.get("PERDURE_UPDATE_SCREENSHOTS") == "1":
        target = ROOT / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        return target / name
    return tmp_path / name


def confirm(page: Page, **fields: str) -> None:
    dialog = page.locator("#ask")
    expect(dialog).to_be_visible()
    for name, value in fields.items():
        page.fill(f"#ask-{name}", value)
    page.click("#ask-ok")
    expect(dialog).to_be_hidden()


# -- scenarios


def test_trigger_an_instance_watch_it_complete_and_open_its_timeline(
    page: Page, server: Server
) -> None:
    page.goto(f"{server.url}/")
    expect(page.locator('tr[data-workflow="greeter"]')).to_be_visible()
    expect(page.locator('tr[data-workflow="greeter"] svg.chart')).to_be_visible()
    page.click('tr[data-workflow="greeter"] a.wf-link')
    expect(page.locator("h1")).to_have_text("greeter")

    page.click("#trigger")
    confirm(page, id="browser-ada", params='{"name": "Ada"}')
    expect(page.locator(".toast")).to_contain_text("Instance browser-ada queued")
    row = page.locator('tr[data-instance="browser-ada"]')
    expect(row).to_have_attribute("data-status", "complete")  # the list refreshes by itself

    row.locator("a").click()
    expect(page.locator("#instance-status .badge")).to_have_text("complete")
    expect(page.locator("#output")).to_contain_text('{"greeting":"hello Ada"}')
    expect(page.locator("#params")).to_contain_text('{"name":"Ada"}')
    step = page.locator('.tl-step[data-step="greet"]')
    expect(step.locator(".seg-ok")).to_have_count(1)
    step.click()
    detail = page.locator(".tl-detail").first
    expect(detail).to_be_visible()
    expect(detail).to_contain_text("success")
    expect(detail.locator("table.attempts tbody tr")).to_have_count(1)


def test_the_trigger_form_refuses_bad_json_in_place(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/?workflow=greeter")
    page.click("#trigger")
    page.fill("#ask-params", "{not json")
    page.click("#ask-ok")
    expect(page.locator("#ask-error")).to_contain_text("not valid JSON")
    expect(page.locator("#ask")).to_be_visible()
    page.click("#ask-cancel")
    expect(page.locator("#ask")).to_be_hidden()


def test_pause_and_resume_a_sleeping_instance(
    page: Page, server: Server, api: httpx.Client
) -> None:
    api.post("/api/workflows/napper/instances", json={"id": "browser-nap"})
    wait_for_status(api, "napper", "browser-nap", "waiting")
    page.goto(f"{server.url}/?workflow=napper&instance=browser-nap")
    badge = page.locator("#instance-status .badge")
    expect(badge).to_have_text("waiting")
    expect(page.locator(".tl-step[data-kind=sleep] .seg-sleep.pending")).to_contain_text("wakes")

    page.click("#act-terminate")  # asks first; cancelling changes nothing
    page.click("#ask-cancel")
    expect(badge).to_have_text("waiting")

    page.click("#act-pause")
    confirm(page)
    expect(badge).to_have_text("paused")
    assert api.get("/api/workflows/napper/instances/browser-nap").json()["result"]["status"] == (
        "paused"
    )
    expect(page.locator("#act-pause")).to_be_disabled()

    page.click("#act-resume")
    confirm(page)
    expect(badge).to_have_text("waiting")
    assert api.get("/api/workflows/napper/instances/browser-nap").json()["result"]["status"] == (
        "waiting"
    )


def test_send_an_event_and_terminate_from_the_instance_page(
    page: Page, server: Server, api: httpx.Client
) -> None:
    api.post("/api/workflows/approval/instances", json={"id": "browser-approve"})
    wait_for_status(api, "approval", "browser-approve", "waiting")
    page.goto(f"{server.url}/?workflow=approval&instance=browser-approve")
    page.click("#act-event")
    confirm(page, type="approve", payload='{"by": "Grace"}')
    expect(page.locator("#instance-status .badge")).to_have_text("complete")
    expect(page.locator("#events")).to_contain_text("approve")
    expect(page.locator("#output")).to_contain_text("Grace")

    api.post("/api/workflows/approval/instances", json={"id": "browser-stop"})
    wait_for_status(api, "approval", "browser-stop", "waiting")
    page.goto(f"{server.url}/?workflow=approval&instance=browser-stop")
    page.click("#act-terminate")
    confirm(page)
    expect(page.locator("#instance-status .badge")).to_have_text("terminated")
    expect(page.locator("#act-terminate")).to_be_disabled()

    page.click("#act-restart")
    confirm(page)
    expect(page.locator("#instance-status .badge")).to_have_text("waiting")
    expect(page.locator('.tl-step[data-step="prepare"] .seg-ok')).to_have_count(1)


def test_with_a_token_the_dashboard_asks_to_log_in_and_still_works(
    browser: Browser, tmp_path: Path, watch: Watch
) -> None:
    with running_server(str(tmp_path / "auth.db"), token=TOKEN) as secured:
        context = browser.new_context()
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.on("dialog", watch.on_dialog)
        page.on("pageerror", lambda exc: watch.errors.append(str(exc)))
        try:
            page.goto(f"{secured.url}/?workflow=greeter")
            expect(page).to_have_url(re.compile(r"/_perdure/login\?next="))
            page.fill("#token", "not-the-right-token")
            page.click("button[type=submit]")
            expect(page.locator(".form-error")).to_have_text("That token is not right.")
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("greeter")  # back where it started
            [cookie] = context.cookies()
            assert cookie["httpOnly"] is True
            assert cookie["sameSite"] == "Strict"

            page.click("#trigger")  # a POST: the page sends its CSRF token
            confirm(page, id="after-login")
            expect(page.locator('tr[data-instance="after-login"]')).to_have_attribute(
                "data-status", "complete"
            )
            page.click("#logout")
            expect(page).to_have_url(re.compile(r"/_perdure/login"))
            page.goto(f"{secured.url}/")
            expect(page).to_have_url(re.compile(r"/_perdure/login"))
        finally:
            context.close()
    assert watch.dialogs == [] and watch.errors == []


def test_failed_attempts_are_red_and_show_their_traceback(
    page: Page, server: Server, api: httpx.Client
) -> None:
    api.post("/api/workflows/flaky/instances", json={"id": "browser-flaky"})
    wait_for_status(api, "flaky", "browser-flaky", "complete")
    page.goto(f"{server.url}/?workflow=flaky&instance=browser-flaky")
    row = page.locator('.tl-step[data-step="wobble"]')
    expect(row.locator(".seg-fail")).to_have_count(1)
    expect(row.locator(".seg-ok")).to_have_count(1)
    expect(row.locator(".seg-gap")).to_have_count(1)
    expect(row).to_contain_text("2 attempts")
    row.click()
    detail = page.locator(".tl-detail").first
    expect(detail.locator("tr.failed")).to_contain_text("ConnectionError")
    detail.locator("details.traceback summary").click()
    expect(detail.locator("details.traceback pre")).to_contain_text(
        "ConnectionError: first attempt fails"
    )

    api.post("/api/workflows/broken/instances", json={"id": "browser-broken"})
    wait_for_status(api, "broken", "browser-broken", "errored")
    page.goto(f"{server.url}/?workflow=broken&instance=browser-broken")
    expect(page.locator("#instance-error")).to_contain_text("ValueError")
    expect(page.locator(".tl-step.step-failure .seg-fail")).to_have_count(1)


def test_stored_markup_is_shown_as_text_and_never_runs(
    page: Page, server: Server, api: httpx.Client, watch: Watch
) -> None:
    api.post("/api/workflows/hostile/instances", json={"id": "browser-xss", "params": XSS})
    wait_for_status(api, "hostile", "browser-xss", "waiting")
    api.post(
        "/api/workflows/hostile/instances/browser-xss/events/poke",
        json={"img": XSS_IMG, "script": XSS},
    )
    wait_for_status(api, "hostile", "browser-xss", "complete")
    page.goto(f"{server.url}/?workflow=hostile&instance=browser-xss")
    expect(page.locator("#instance-status .badge")).to_have_text("complete")
    for row in page.locator(".tl-step").all():
        row.click()
    page.eval_on_selector_all("details", "all => all.forEach(d => { d.open = true; })")

    # The step names, outputs, params and event payload are on the page, literally.
    expect(page.locator(".step-name")).to_have_text([XSS_IMG, XSS, *PAYLOADS, f"wait {XSS}"])
    expect(page.locator("#params")).to_contain_text(XSS)
    expect(page.locator("#output")).to_contain_text(XSS)
    expect(page.locator("#events .event-payload")).to_contain_text(XSS_IMG)
    assert XSS in page.locator(".tl-detail pre").first.inner_text()
    # ... and none of it became markup.
    corpus = page.locator("#output pre").inner_text()
    for payload in PAYLOADS:
        assert json.dumps(payload)[1:-1] in corpus
    assert "49" not in corpus  # no template was evaluated
    for tag in ["img", "svg", "iframe", "math", "object", "input", "a[href^=javascript]"]:
        assert page.locator(tag).count() == 0, tag
    assert page.locator("[onerror], [onload], [ontoggle], [onfocus]").count() == 0
    assert page.locator("main script, #toasts script").count() == 0
    assert page.locator("script").count() == 1  # the dashboard's own module

    api.post("/api/workflows/broken/instances", json={"id": "browser-xss-error"})
    wait_for_status(api, "broken", "browser-xss-error", "errored")
    page.goto(f"{server.url}/?workflow=broken&instance=browser-xss-error")
    expect(page.locator("#instance-error .error-message")).to_have_text(f"cannot continue {XSS}")

    # Markup typed into the id search, or put in the URL, is text too.
    page.goto(f"{server.url}/?workflow=hostile")
    page.fill("#search", XSS_IMG)
    page.press("#search", "Enter")
    expect(page.locator("main")).to_contain_text(f"No instance with id “{XSS_IMG}”")
    page.goto(f"{server.url}/?workflow={XSS}&instance={XSS_IMG}")
    expect(page.locator("#crumbs")).to_contain_text(XSS)
    expect(page.locator("#crumbs")).to_contain_text(XSS_IMG)
    expect(page.locator("main h1")).to_have_text("Not found")
    expect(page.locator("main")).to_contain_text(f"Back to {XSS}")
    page.goto(f"{server.url}/?workflow={XSS_IMG}")
    expect(page.locator("main")).to_contain_text("invalid workflow name")
    assert page.locator("img").count() == 0
    page.wait_for_timeout(300)  # give any injected handler the chance to fire
    assert watch.dialogs == []


def test_instances_are_listed_newest_first_filtered_found_and_paged(
    page: Page, server: Server, api: httpx.Client
) -> None:
    batch = [{"id": f"list-{i:02d}"} for i in range(30)]
    assert api.post("/api/workflows/lister/instances/batch", json=batch).status_code == 201
    wait_for_status(api, "lister", "list-29", "complete")
    page.goto(f"{server.url}/?workflow=lister")
    rows = page.locator("#instances tbody tr")
    expect(rows).to_have_count(25)
    expect(rows.first).to_have_attribute("data-instance", "list-29")
    page.click("#older")
    expect(rows).to_have_count(5)
    expect(rows.last).to_have_attribute("data-instance", "list-00")
    page.click("#newer")
    expect(rows.first).to_have_attribute("data-instance", "list-29")

    page.select_option("#status-filter", "errored")
    expect(rows).to_have_count(0)
    expect(page.locator("main")).to_contain_text("No errored instances.")
    page.select_option("#status-filter", "complete")
    expect(rows).to_have_count(25)

    page.fill("#search", "list-07")
    page.press("#search", "Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-instance", "list-07")
    assert "q=list-07" in page.url


def test_a_long_history_shows_its_first_and_latest_steps(
    page: Page, server: Server, api: httpx.Client
) -> None:
    api.post("/api/workflows/many/instances", json={"id": "browser-many"})
    wait_for_status(api, "many", "browser-many", "complete", timeout=30)
    page.goto(f"{server.url}/?workflow=many&instance=browser-many")
    expect(page.locator(".tl-step")).to_have_count(400)
    expect(page.locator(".tl-gap")).to_have_text("… 20 more steps …")
    expect(page.locator(".tl-step").first).to_have_attribute("data-step", "item 0")
    expect(page.locator(".tl-step").last).to_have_attribute("data-step", "item 419")
    expect(page.locator("#facts")).to_contain_text("420")


def test_screenshots_of_a_running_and_a_finished_instance(
    page: Page, server: Server, api: httpx.Client, tmp_path: Path
) -> None:
    api.post(
        "/api/workflows/checkout/instances", json={"id": "order-1042", "params": {"order": 1042}}
    )
    page.goto(f"{server.url}/?workflow=checkout&instance=order-1042")
    waiting = page.locator('.tl-step[data-step="delivery confirmed"] .seg-wait.pending')
    expect(waiting).to_be_visible(timeout=15_000)  # live: the page follows the instance
    charge = page.locator('.tl-step[data-step="charge card"]')
    expect(charge.locator(".seg-fail")).to_have_count(2)
    expect(page.locator(".tl-step[data-kind=sleep] .seg-sleep")).to_have_count(1)
    charge.click()
    page.locator(".tl-detail details.traceback summary").first.click()
    page.screenshot(path=screenshot_path("instance-running.png", tmp_path), full_page=True)

    page.click("#act-event")
    confirm(page, type="delivered", payload='{"carrier": "DHL", "signed_by": "Ada"}')
    expect(page.locator("#instance-status .badge")).to_have_text("complete")
    page.eval_on_selector("#toasts", "box => box.replaceChildren()")
    page.screenshot(path=screenshot_path("instance-complete.png", tmp_path), full_page=True)

    for order in range(1043, 1049):
        api.post(
            "/api/workflows/checkout/instances",
            json={"id": f"order-{order}", "params": {"order": order}},
        )
    wait_for_status(api, "checkout", "order-1043", "waiting")
    api.patch("/api/workflows/checkout/instances/order-1044/status", json={"status": "terminate"})
    api.patch("/api/workflows/checkout/instances/order-1045/status", json={"status": "pause"})
    page.goto(f"{server.url}/?workflow=checkout")
    expect(page.locator('tr[data-instance="order-1042"]')).to_be_visible()
    expect(page.locator('tr[data-instance="order-1044"]')).to_have_attribute(
        "data-status", "terminated"
    )
    page.screenshot(path=screenshot_path("instances.png", tmp_path))
    page.goto(f"{server.url}/")
    expect(page.locator('tr[data-workflow="checkout"] svg.chart')).to_be_visible()
    page.screenshot(path=screenshot_path("workflows.png", tmp_path))
    assert screenshot_path("instance-running.png", tmp_path).stat().st_size > 10_000
