"""A real browser for the tests: headless Chromium driven by Selenium, shared by every app's browser tests.

Debian's `chromium` and `chromium-driver` (installed by .ci/run), driven through /usr/bin/chromedriver: nothing is
downloaded. Without them the tests skip with the reason, and fail instead with CLINREC_REQUIRE_SERVICES=1.
The window is a 1366×768 laptop; the driver keeps the console ("browser") and the network ("performance") logs,
so a test can assert that a page logged no error, made no failing request and asked no other host for anything.
Screenshots go to `artifacts/screenshots/` (CLINREC_TEST_SCREENSHOTS), printed at the end of the run.

Registered as a pytest plugin by the root conftest.py: its fixtures are available to every test module.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from conftest import services_required

CHROMIUM = os.environ.get("CLINREC_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CLINREC_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = Path(os.environ.get("CLINREC_TEST_SCREENSHOTS", settings.BASE_DIR / "artifacts" / "screenshots"))
PASSWORD = "Str0ng-pass!word"
RENDER_TIMEOUT = 30  # seconds for Swagger UI / Redoc to fetch the schema and draw it on a busy 2-core machine
LAPTOP = (1366, 768)  # the ward's laptop: every admin page must fit it with the side menu open

_screenshots_taken: list[Path] = []


def require_chromium() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        message = f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver)"
        if services_required():
            pytest.fail(f"{message}, and CLINREC_REQUIRE_SERVICES=1 requires it.")
        pytest.skip(f"{message}; set CLINREC_REQUIRE_SERVICES=1 to make this a failure.")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Headless Chromium with a 1366×768 viewport, keeping its console and network logs."""
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={LAPTOP[0]},{LAPTOP[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # An explicit driver and browser: Selenium Manager has nothing to find or download.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(RENDER_TIMEOUT)
    # The viewport itself is the laptop's, whatever the headless window adds around it.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": LAPTOP[0], "height": LAPTOP[1], "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        yield driver
    finally:
        driver.quit()


def log_in(browser, base_url: str, username: str, password: str = PASSWORD) -> None:
    """Log in through the admin's login form, as a person would."""
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(f"{base_url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait_for(browser, "#site-name")
    drain_logs(browser)  # each test starts with empty logs


@pytest.fixture
def superuser_site(browser, live_server) -> str:
    """A live server with a superuser, the browser logged in to the admin as it; the server's URL."""
    get_user_model().objects.create_superuser("root", password=PASSWORD)
    log_in(browser, live_server.url, "root")
    return live_server.url


def wait_for(browser, css: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, RENDER_TIMEOUT).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)),
        message=f"{css} never appeared on {browser.current_url}",
    )


def console(browser) -> list[str]:
    """The console lines logged since the last call."""
    return [entry["message"] for entry in browser.get_log("browser")]


def console_errors(browser) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def drain_logs(browser) -> None:
    browser.get_log("browser")
    browser.get_log("performance")


def network_problems(browser, base_url: str) -> list[str]:
    """Requests since the last call that failed (an error, or a 4xx/5xx answer) or went to another host."""
    own = urlparse(base_url).netloc
    urls: dict[str, str] = {}
    problems = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        method, params = message["method"], message.get("params", {})
        if method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            urls[params["requestId"]] = url
            parsed = urlparse(url)
            if parsed.scheme in {"http", "https", "ws", "wss"} and parsed.netloc != own:
                problems.append(f"request to another host: {url}")
        elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
            problems.append(f"{params['response']['status']} for {params['response']['url']}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            url = urls.get(params["requestId"], params["requestId"])
            problems.append(f"failed ({params.get('errorText')} {params.get('blockedReason', '')}): {url}")
    return problems


def horizontal_overflow(browser) -> int:
    """How many pixels the page is wider than the window (0: no sideways scrollbar)."""
    return browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")


def sideways_scrollers(browser) -> list[str]:
    """Elements of the page with a sideways scrollbar of their own (the admin's list table scrolls inside one)."""
    return browser.execute_script(
        """return [...document.querySelectorAll('body *')].filter(element => {
            const style = getComputedStyle(element).overflowX;
            return (style === 'auto' || style === 'scroll') && element.scrollWidth > element.clientWidth + 1;
        }).map(element => `${element.tagName.toLowerCase()}#${element.id}.${element.className}`
            + ` (${element.scrollWidth - element.clientWidth}px)`);"""
    )


def screenshot(browser, name: str) -> Path:
    """Save the whole page (not only the visible part) as `<SCREENSHOTS>/<name>.png`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": LAPTOP[0], "height": max(LAPTOP[1], height), "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        browser.save_screenshot(str(path))
    finally:
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": LAPTOP[0], "height": LAPTOP[1], "deviceScaleFactor": 1, "mobile": False},
        )
    _screenshots_taken.append(path)
    return path


def pytest_terminal_summary(terminalreporter) -> None:
    if _screenshots_taken:
        terminalreporter.write_line(f"Browser screenshots ({len(_screenshots_taken)}): {SCREENSHOTS}")
