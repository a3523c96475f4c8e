"""The Content-Security-Policy in a real browser: the admin, Swagger UI, Redoc and the browsable API still work.

Headless Chromium (clinrec/tests/browser.py: Debian's `chromium` and `chromium-driver`, nothing downloaded)
opens each page of a live server and reads the console: a page the policy broke logs
"Refused to ... because it violates the following Content Security Policy directive". Without Chromium these
tests skip, and fail instead with CLINREC_REQUIRE_SERVICES=1 (CI installs it, see .ci/run).
"""

from __future__ import annotations

import pytest

from clinrec.tests.browser import console, network_problems, wait_for
from patients.tests.factories import PatientFactory

# The live server reads committed data; serialized_rollback brings the roles back after the flush.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def site(superuser_site):
    """A live server with a superuser and a patient, and the browser logged in to the admin."""
    PatientFactory(id="108", name="Ada Byron")
    return superuser_site


def csp_violations(lines: list[str]) -> list[str]:
    return [line for line in lines if "Content Security Policy" in line or "Content-Security-Policy" in line]


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
    network_problems(browser, site)  # from here on: Redoc's own requests
    lines = open_page(browser, f"{site}/api/redoc/", "[data-section-id]")
    # Nothing from the internet: no web fonts, and Redocly's logo (their CDN) is never requested.
    assert not network_problems(browser, site), network_problems(browser, site)
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
