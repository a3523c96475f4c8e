"""The clinician's workspace in a real browser, on a 1366×768 laptop, against the seeded mock hospital.

A clinician opens patient 108, presses Evaluate and reads both recommendations with their reasons; a viewer
reads the same summary with no control to change anything. Every admin page visited fits the window (no
sideways scrollbar with the side menu open), logs no console error, and makes no failing request and none to
another host. Screenshots of the key pages are left in artifacts/screenshots/ for a person to look at.
"""

from __future__ import annotations

import pytest

from clinrec.tests.browser import (
    console_errors,
    drain_logs,
    horizontal_overflow,
    log_in,
    network_problems,
    screenshot,
    sideways_scrollers,
    wait_for,
)
from conftest import make_user
from recommendations.seed import seed_mock_hospital
from security.roles import CLINICIAN, VIEWER

# The live server reads committed data; serialized_rollback brings the roles back after the flush.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

PATIENT_108 = "/admin/patients/patient/108/change/"


@pytest.fixture
def hospital(live_server):
    seed_mock_hospital()
    return live_server.url


def open_admin_page(browser, base_url: str, path: str, *, shot: str | None = None, ready: str = "#content"):
    """Open an admin page and hold it to the laptop's standard: it fits, no console error, no bad request."""
    browser.get(f"{base_url}{path}")
    wait_for(browser, ready)
    if shot:
        screenshot(browser, shot)
    assert horizontal_overflow(browser) <= 0, f"{path} is {horizontal_overflow(browser)}px wider than the window"
    assert not sideways_scrollers(browser), (path, sideways_scrollers(browser))
    assert not console_errors(browser), (path, console_errors(browser))
    assert not network_problems(browser, base_url), (path, network_problems(browser, base_url))


def text_of(browser, css: str) -> str:
    return browser.find_element("css selector", css).text


def test_a_clinician_evaluates_patient_108_and_reads_both_recommendations_with_reasons(browser, hospital):
    make_user("nurse", CLINICIAN, is_staff=True)
    log_in(browser, hospital, "nurse")
    open_admin_page(browser, hospital, PATIENT_108, shot="patient-108-before-evaluate")
    assert "Henry Walsh" in text_of(browser, "#patient-summary")
    assert "No active recommendation" in text_of(browser, "#active-recommendations")

    # Preview: the dry run's answer on the patient page itself, nothing recorded.
    browser.find_element("css selector", "#preview-button").click()
    preview = wait_for(browser, "#preview-results").text
    assert "Physical Therapy" in preview and "Post-Op Rehabilitation Plan" in preview and "would be new" in preview
    assert "No active recommendation" in text_of(browser, "#active-recommendations")
    assert not console_errors(browser) and not network_problems(browser, hospital)
    screenshot(browser, "patient-108-preview")

    browser.find_element("css selector", "#evaluate-button").click()
    wait_for(browser, "ul#active-recommendations li")
    drain_logs(browser)  # the POST's redirect is not a page of its own
    open_admin_page(browser, hospital, PATIENT_108, shot="patient-108-evaluated")

    items = [item.text for item in browser.find_elements("css selector", "#active-recommendations li")]
    assert len(items) == 2, items
    physical, rehab = sorted(items)
    assert physical.startswith("Physical Therapy") and "chronic pain" in physical.lower()
    assert rehab.startswith("Post-Op Rehabilitation Plan") and "Total knee replacement" in rehab
    assert all("rule set v" in item for item in items), items  # the provenance: which rule-set version
    history = text_of(browser, "#procedure-history")
    assert "Total knee replacement" in history and "Orthopaedics" in history
    assert browser.find_element("css selector", "#patient-edit").get_attribute("open") is not None


def test_a_viewer_reads_the_summary_without_any_control_to_change_it(browser, hospital):
    make_user("student", VIEWER, is_staff=True)
    log_in(browser, hospital, "student")
    open_admin_page(browser, hospital, PATIENT_108, shot="patient-108-viewer")

    assert "Henry Walsh" in text_of(browser, "#patient-summary")
    assert "Total knee replacement" in text_of(browser, "#procedure-history")
    assert not browser.find_elements("css selector", "#evaluate-button, #preview-button")
    assert browser.find_element("css selector", "#patient-edit").get_attribute("open") is None  # collapsed
    assert not browser.find_elements("css selector", "input[type=submit], button[type=submit]:not(#logout-form *)")
    assert not browser.find_elements("css selector", ".add-row, .addlink, .deletelink")


ADMIN_PAGES = {
    "admin-index": "/admin/",
    "patient-list": "/admin/patients/patient/",
    "patient-add": "/admin/patients/patient/add/",
    "patient-procedure-list": "/admin/procedures/patientprocedure/",
    "procedure-list": "/admin/procedures/procedure/",
    "patient-recommendation-list": "/admin/recommendations/patientrecommendation/",
    "recommendation-list": "/admin/recommendations/recommendation/",
    "rule-set-list": "/admin/recommendations/ruleset/",
    "event-list": "/admin/recommendations/recommendationevent/",
    "notification-list": "/admin/recommendations/notification/",
    "daily-count-list": "/admin/recommendations/recommendationdailycount/",
    "refresh-token-list": "/admin/token_blacklist/outstandingtoken/",
    "cds-issuer-list": "/admin/interop/cdsissuer/",
    "user-list": "/admin/auth/user/",
    "group-list": "/admin/auth/group/",
}


def test_every_admin_page_fits_a_laptop_and_fetches_nothing_from_outside(browser, superuser_site):
    seed_mock_hospital()
    browser.get(f"{superuser_site}{PATIENT_108}")
    browser.find_element("css selector", "#evaluate-button").click()  # events and notifications to list
    wait_for(browser, "ul#active-recommendations li")
    drain_logs(browser)
    for name, path in ADMIN_PAGES.items():
        open_admin_page(browser, superuser_site, path, shot=name)
    # The side menu is open on every list page: it is part of what has to fit.
    assert browser.find_element("css selector", "#nav-sidebar").is_displayed()
