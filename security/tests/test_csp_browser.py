"""The Content-Security-Policy in a real browser: the admin, Swagger UI, Redoc and the browsable API still work.

Headless Chromium (Debian's `chromium` and `chromium-driver`, driven by Selenium through /usr/bin/chromedriver;
no browser is downloaded) opens each page of a live server and reads the console: a page the policy broke logs
"Refused to ... because it violates the following Content Security Policy directive". Without Chromium these
tests skip, and fail instead with CLINREC_REQUIRE_SERVICES=1 (CI installs it, see .ci/run).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model

from conftest import services_required
from patients.tests.factories import PatientFactory

CHROMIUM = os.environ.get("CLINREC_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CLINREC_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
PASSWORD = "Str0ng-pass!word"
RENDER_TIMEOUT = 30  # seconds for Swagger UI / Redoc to fetch the schema and draw it on a busy 2-core machine

# The live server reads committed data; serialized_rollback brings the roles back after the flush.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def require_chromium() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        message = f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver)"
        if services_required():
            pytest.fail(f"{message}, and CLINREC_REQUIRE_SERVICES=1 requires it.")
        pytest.skip(f"{message}; set CLINREC_REQUIRE_SERVICES=1 to make this a failure.")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,1024")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver and browser: Selenium Manager has nothing to find or download.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(RENDER_TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def site(browser, live_server):
    """A live server with a superuser and a patient, and the browser logged in to the admin."""
    from selenium.webdriver.common.by import By

    get_user_model().objects.create_superuser("root", password=PASSWORD)
    PatientFactory(id="108", name="Ada Byron")
    browser.delete_all_cookies()
    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("root")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait_for(browser, "#site-name")
    console(browser)  # start each test with an empty console
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


# The policy doing its job: Redoc's sidebar footer shows Redocly's logo from their CDN, which no page may load;
# Redoc hides the image when it is refused.
EXPECTED_REFUSALS = ("'https://cdn.redoc.ly/redoc/logo-mini.svg'",)


def csp_violations(lines: list[str]) -> list[str]:
    return [
        line
        for line in lines
        if ("Content Security Policy" in line or "Content-Security-Policy" in line)
        and not any(expected in line for expected in EXPECTED_REFUSALS)
    ]


def open_page(browser, url: str, rendered: str) -> list[str]:
    """Open a page, wait until `rendered` (a CSS selector its scripts create) is there; the console lines."""
    from selenium.common.exceptions import TimeoutException

    browser.get(url)
    try:
        wait_for(browser, rendered)
    except TimeoutException:
        pytest.fail(f"{url} did not render {rendered}; its console: {console(browser)}")
    return console(browser)


def test_the_console_reports_a_violation_when_a_page_breaks_the_policy(site, browser):
    # The detector itself: an inline script injected into a page is refused and logged as a violation.
    open_page(browser, f"{site}/admin/", "#site-name")
    browser.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.injected = 1';"
        "document.body.appendChild(s);"
    )
    assert browser.execute_script("return window.injected") is None
    assert csp_violations(console(browser))


def test_admin_changelist_and_change_page_work_under_the_policy(site, browser):
    lines = open_page(browser, f"{site}/admin/patients/patient/", "#result_list")
    # actions.js runs: the header checkbox selects every row and the counter says so.
    browser.find_element("css selector", "#action-toggle").click()
    assert browser.find_element("css selector", "input.action-select").is_selected()
    assert "1 of 1 selected" in browser.find_element("css selector", ".action-counter").text
    lines += open_page(browser, f"{site}/admin/patients/patient/?q=Ada", "#result_list")
    assert "Ada Byron" in browser.find_element("css selector", "#result_list").text
    lines += open_page(browser, f"{site}/admin/patients/patient/108/change/", "#patient_form")
    lines += open_page(browser, f"{site}/admin/patients/patient/add/", "#patient_form")
    # The admin's scripts ran: the inline formsets' "Add another" links are created by inlines.js.
    wait_for(browser, ".add-row a")
    assert not csp_violations(lines), lines


def test_swagger_ui_renders_its_operations_under_the_policy(site, browser):
    lines = open_page(browser, f"{site}/api/docs/", ".opblock")
    summaries = {element.text for element in browser.find_elements("css selector", ".opblock-summary-path")}
    assert "/api/v1/patients/" in summaries
    # "Try it out" on the health check: Swagger UI calls the API from the page (connect-src).
    browser.find_element("css selector", "#operations-health-health_retrieve .opblock-summary").click()
    wait_for(browser, "#operations-health-health_retrieve .try-out__btn").click()
    wait_for(browser, "#operations-health-health_retrieve .execute").click()
    status = wait_for(browser, "#operations-health-health_retrieve .live-responses-table tbody .response-col_status")
    assert status.text.strip() == "200"
    lines += console(browser)
    assert not csp_violations(lines), lines


def test_redoc_renders_under_the_policy(site, browser):
    lines = open_page(browser, f"{site}/api/redoc/", "[data-section-id]")
    assert "List patients" in browser.find_element("css selector", ".api-content").text
    # Redoc's search runs in a web worker: typing into it must find an operation.
    browser.find_element("css selector", "input.search-input").send_keys("evaluate")
    assert "Evaluate a patient" in wait_for(browser, "[data-role='search:results']").text
    lines += console(browser)
    assert not csp_violations(lines), lines


def test_browsable_api_works_under_the_policy(site, browser):
    lines = open_page(browser, f"{site}/api/v1/", ".response-info")
    assert "patients" in browser.find_element("css selector", ".response-info").text
    lines += open_page(browser, f"{site}/api/v1/patients/", ".response-info")
    assert "Ada Byron" in browser.find_element("css selector", ".response-info").text
    # Bootstrap's tabs (the browsable API's scripts) switch the POST form to raw data.
    browser.find_element("css selector", "a[name='raw-tab']").click()
    assert browser.find_element("css selector", "#post-generic-content-form").is_displayed()
    lines += console(browser)
    lines += open_page(browser, f"{site}/api-auth/login/", "#id_username")
    assert not csp_violations(lines), lines


def test_browsable_api_log_out_works_under_the_policy(site, browser):
    lines = open_page(browser, f"{site}/api/v1/patients/", ".response-info")
    browser.find_element("css selector", ".navbar .dropdown-toggle").click()
    wait_for(browser, "#logoutForm button").click()
    lines += open_page(browser, f"{site}/api/v1/patients/", ".response-info")
    assert "Authentication credentials were not provided" in browser.find_element("css selector", ".response-info").text
    assert not csp_violations(lines), lines
