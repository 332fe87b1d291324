"""The event viewer in a real browser: headless Chromium from the Debian packages, driven
with selenium through the system chromedriver (``.ci/install-system`` installs both).

Without Chromium or chromedriver these tests skip, saying so, except under CI (the
``CI`` environment variable), where they fail instead. With
``DATABUDDY_DEVSERVER_SCREENSHOT=docs/devserver.png`` the overview test saves the
screenshot the docs show.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from databuddy_otel import Databuddy
from databuddy_otel.devserver import DevServer

CHROMIUM = os.environ.get("DATABUDDY_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("DATABUDDY_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOT = os.environ.get("DATABUDDY_DEVSERVER_SCREENSHOT")
#: Launch flags that work headless as root, with nothing fetched from the network.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,800",
    "--force-prefers-reduced-motion",  # no highlight animation in the screenshot
)
XSS_NAME = "<img src=x onerror=alert(1)>"

#: The visible rows, top to bottom: kind, the name cell's text, the rest of the line.
VISIBLE_ROWS = """
return [...document.querySelectorAll('#rows .row')]
  .filter((row) => !row.classList.contains('hidden'))
  .map((row) => [
    row.classList.contains('refusal') ? 'refusal' : 'event',
    row.querySelector('.name').textContent,
    row.querySelector('.line').textContent,
  ]);
"""


def _unavailable() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements-dev.txt)"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return f"{path} not found: run .ci/install-system (apt-get install {package})"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole module, with a fresh empty profile."""
    reason = _unavailable()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="databuddy-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        try:
            yield driver
        finally:
            driver.quit()


@pytest.fixture
def page(browser: Any, databuddy_server: DevServer) -> Any:
    """The browser on this test's server's viewer, connected and live."""
    browser.get(databuddy_server.url + "/")
    wait(browser, lambda d: d.find_element("id", "status").text == "\u25cf live")
    browser.execute_script("window.loadedOnce = true;")  # gone if the page reloads
    return browser


@pytest.fixture
def client(databuddy_server: DevServer) -> Iterator[Databuddy]:
    """An SDK client sending to the test's server."""
    client = Databuddy(client_id="site", api_url=databuddy_server.url)
    yield client
    client.shutdown(timeout=5)


def wait(driver: Any, condition: Any, timeout: float = 10.0) -> Any:
    """Wait (explicitly, no fixed sleep) until ``condition(driver)`` is truthy."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


def rows(driver: Any) -> list[list[str]]:
    return driver.execute_script(VISIBLE_ROWS)


def wait_for_rows(driver: Any, count: int) -> list[list[str]]:
    """Wait until exactly ``count`` rows are visible; return them."""

    def shown(d: Any) -> tuple[list[list[str]]] | None:
        found = rows(d)
        return (found,) if len(found) == count else None  # a tuple: truthy even when empty

    return wait(driver, shown)[0]


def track(client: Databuddy, *events: dict[str, Any]) -> None:
    for event in events:
        assert client.track(event).success
    assert client.flush(timeout=5).success


@pytest.mark.slow
def test_tracked_events_appear_newest_first_without_a_reload(page, client):
    """Events tracked through the SDK show up on the open page, newest on top."""
    track(
        client,
        {
            "name": "signup",
            "anonymousId": "anon_1",
            "sessionId": "sess_1",
            "properties": {"plan": "pro"},
        },
        {"name": "page_view", "properties": {"path": "/pricing"}},
    )
    (top, bottom) = wait_for_rows(page, 2)
    assert top[:2] == ["event", "page_view"]
    assert bottom[:2] == ["event", "signup"]
    assert "anon_1" in bottom[2] and "sess_1" in bottom[2] and "track" in bottom[2]
    assert 'plan="pro"' in bottom[2]
    assert page.execute_script("return window.loadedOnce === true;")


def test_clicking_a_row_shows_the_stored_event(page, client, databuddy_server):
    """A click on a row unfolds the whole stored event as formatted JSON."""
    track(client, {"name": "order_paid", "properties": {"amount": 42, "currency": "EUR"}})
    wait_for_rows(page, 1)
    page.find_element("css selector", "#rows .row .line").click()
    detail = wait(
        page, lambda d: (e := d.find_element("css selector", ".detail")).is_displayed() and e
    )
    assert json.loads(detail.text) == databuddy_server.events()[0]


def test_a_refused_track_event_shows_its_reason(page, databuddy_server):
    """A /track 400 shows in the stream, marked as refused, with the server's reason."""
    response = requests.post(
        f"{databuddy_server.url}/track",
        json={"name": "n" * 300},
        params={"website_id": "site"},
        timeout=5,
    )
    assert response.status_code == 400
    ((kind, name, line),) = wait_for_rows(page, 1)
    assert kind == "refusal"
    assert name.startswith("400")
    assert "String must contain at most 256 character(s)" in line


def test_a_bad_event_in_a_legacy_batch_shows_beside_the_good_one(page, databuddy_server):
    """A legacy batch answered 200 shows its stored event and its refused one."""
    batch = [{"type": "custom", "name": "kept"}, {"type": "custom", "name": "x" * 200}]
    requests.post(f"{databuddy_server.url}/batch?client_id=site", json=batch, timeout=5)
    shown = wait_for_rows(page, 2)
    assert sorted(kind for kind, _, _ in shown) == ["event", "refusal"]
    (refusal,) = [line for kind, _, line in shown if kind == "refusal"]
    assert "event 1: Invalid event schema" in refusal
    assert "at most 128 character(s)" in refusal


def test_an_injected_failure_is_marked_injected(page, client, databuddy_server):
    """A fail_next answer is shown as a refusal marked with the control that staged it."""
    databuddy_server.fail_next(status=503)
    client.track(name="retried")
    assert client.flush(timeout=5).success  # the SDK retries past the injected 503
    shown = wait_for_rows(page, 2)
    assert shown[0][:2] == ["event", "retried"]
    assert shown[1][0] == "refusal"
    assert "injected: fail_next" in shown[1][1]
    assert shown[1][1].endswith("retried")  # the refused batch's event name


def test_filters_narrow_the_list_and_counts_show_per_name(page, client):
    """Typing in the filters hides the rows that do not match; chips count each name."""
    track(
        client,
        {"name": "signup", "anonymousId": "anon_a", "sessionId": "sess_1"},
        {"name": "page_view", "anonymousId": "anon_b", "sessionId": "sess_1"},
        {"name": "page_view", "anonymousId": "anon_a", "sessionId": "sess_2"},
    )
    wait_for_rows(page, 3)
    chips = page.execute_script(
        "return [...document.querySelectorAll('#counts .chip')]"
        ".map((chip) => [chip.firstChild.textContent, chip.querySelector('.n').textContent]);"
    )
    assert chips == [["page_view", "2"], ["signup", "1"]]

    page.find_element("id", "filter-name").send_keys("page")
    assert {name for _, name, _ in wait_for_rows(page, 2)} == {"page_view"}
    page.find_element("id", "filter-anonymous-id").send_keys("anon_a")
    ((_, name, line),) = wait_for_rows(page, 1)
    assert name == "page_view" and "sess_2" in line
    page.find_element("id", "filter-name").clear()
    page.find_element("id", "filter-anonymous-id").clear()
    page.find_element("id", "filter-session-id").send_keys("sess_1")
    assert sorted(name for _, name, _ in wait_for_rows(page, 2)) == ["page_view", "signup"]


def test_markup_in_an_event_is_shown_as_text(page, client):
    """An event named like an HTML tag is text on the page: no element, no script runs."""
    track(
        client,
        {
            "name": XSS_NAME,
            "anonymousId": "<b>bold</b>",
            "properties": {"html": "<script>alert(2)</script>"},
        },
    )
    ((_, name, line),) = wait_for_rows(page, 1)
    assert name == XSS_NAME
    assert "<b>bold</b>" in line
    page.find_element("css selector", "#rows .row .line").click()
    assert XSS_NAME in wait(page, lambda d: d.find_element("css selector", ".detail").text)
    created = page.execute_script(
        "return document.querySelectorAll('#rows img, #rows b, #rows script').length;"
    )
    assert created == 0
    assert page.find_elements("tag name", "img") == []
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        page.switch_to.alert  # noqa: B018 - the property raises when no alert is open


def test_clear_empties_every_open_viewer(page, client, databuddy_server):
    """The Clear button deletes the store and empties the page in every open viewer."""
    track(client, {"name": "a"}, {"name": "b"})
    requests.post(f"{databuddy_server.url}/track", json={"name": ""}, params={"website_id": "s"})
    wait_for_rows(page, 3)
    first = page.current_window_handle
    page.switch_to.new_window("tab")
    try:
        page.get(databuddy_server.url + "/")
        wait_for_rows(page, 3)  # the second viewer starts from the same snapshot
        page.find_element("id", "clear").click()
        wait_for_rows(page, 0)
        assert page.find_element("id", "empty").is_displayed()
    finally:
        page.close()
        page.switch_to.window(first)
    wait_for_rows(page, 0)
    assert page.find_elements("css selector", "#counts .chip") == []
    assert databuddy_server.events() == []
    assert databuddy_server.rejections() == []


def test_overview(page, client, databuddy_server):
    """A typical session: events, a refusal and an injected fault on one page (the docs' shot)."""
    track(
        client,
        {
            "name": "signup",
            "anonymousId": "anon_3f2a",
            "sessionId": "sess_91c0",
            "properties": {"plan": "pro", "method": "email"},
        },
        {
            "name": "page_view",
            "anonymousId": "anon_3f2a",
            "sessionId": "sess_91c0",
            "properties": {"path": "/pricing", "referrer": "/"},
        },
        {
            "name": "checkout_started",
            "anonymousId": "anon_3f2a",
            "sessionId": "sess_91c0",
            "properties": {"cart_value": 49, "items": 2},
        },
    )
    requests.post(
        f"{databuddy_server.url}/track",
        json={"name": "checkout_completed", "properties": "not an object"},
        params={"website_id": "site"},
        timeout=5,
    )
    databuddy_server.fail_next(status=503)
    track(
        client,
        {
            "name": "order_paid",
            "anonymousId": "anon_3f2a",
            "sessionId": "sess_91c0",
            "properties": {"amount": 49, "currency": "EUR"},
        },
    )
    shown = wait_for_rows(page, 6)
    assert [kind for kind, _, _ in shown] == [
        "event",
        "refusal",
        "refusal",
        "event",
        "event",
        "event",
    ]
    (row,) = [
        row
        for row in page.find_elements("css selector", "#rows .row.event")
        if row.find_element("css selector", ".name").text == "checkout_started"
    ]
    row.find_element("css selector", ".line").click()
    detail = row.find_element("css selector", ".detail")
    wait(page, lambda d: detail.is_displayed())
    if SCREENSHOT:
        Path(SCREENSHOT).parent.mkdir(parents=True, exist_ok=True)
        assert page.save_screenshot(SCREENSHOT)
