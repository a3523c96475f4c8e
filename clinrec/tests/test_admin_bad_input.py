"""No URL or form makes the admin answer 500: odd ids, filters, orderings and pages get a 404, a 400 or Django's
"invalid filters" redirect, and the admin's forms refuse the same text the API refuses.

Runs on SQLite and, in the PostgreSQL pass, on PostgreSQL (where a NUL in a query used to be a 500).
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client

from clinrec.admin import SafeChangeListMixin
from patients.tests.factories import PatientFactory
from procedures.models import PatientProcedure
from procedures.tests.factories import PatientProcedureFactory, ProcedureFactory
from recommendations.models import Recommendation
from recommendations.tests.factories import PatientRecommendationFactory, RecommendationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db) -> Client:
    user = get_user_model().objects.create_superuser("root", password="Str0ng-pass!word")
    client = Client()
    client.force_login(user)
    PatientRecommendationFactory(patient=PatientFactory(id="108"))
    PatientProcedureFactory()
    return client


HOSTILE_URLS = [
    "/admin/patients/patient/a%00b/change/",
    "/admin/patients/patient/a%00b/delete/",
    "/admin/patients/patient/a%00b/history/",
    "/admin/patients/patient/%00/",
    "/admin/patients/patient/a%01b/change/",
    "/admin/procedures/patientprocedure/abc/change/",
    "/admin/procedures/patientprocedure/99999999999999999999999/change/",
    "/admin/patients/patient/?birth_date__year=99999999999",
    "/admin/patients/patient/?birth_date__year=-1",
    "/admin/patients/patient/?birth_date__month=99999999999",
    "/admin/patients/patient/?birth_date__day=99999999999",
    "/admin/patients/patient/?birth_date__gte=99999-99-99",
    "/admin/patients/patient/?birth_date__gte=not-a-date",
    "/admin/patients/patient/?height_cm__gt=1e999999",
    "/admin/patients/patient/?height_cm__gt=nan",
    "/admin/patients/patient/?id__in=a%00",
    "/admin/patients/patient/?q=a%00",
    "/admin/patients/patient/?q=%EF%BF%BF%ED%A0%80",
    "/admin/patients/patient/?o=99",
    "/admin/patients/patient/?o=-x.1",
    "/admin/patients/patient/?o=%00",
    "/admin/patients/patient/?p=-1",
    "/admin/patients/patient/?p=abc",
    "/admin/patients/patient/?p=99999999999999999999",
    "/admin/patients/patient/?all=&p=2",
    "/admin/patients/patient/?no_such_field=1",
    "/admin/patients/patient/?name__regex=(",
    "/admin/patients/patient/?chronic_pain__exact=maybe",
    "/admin/patients/patient/?sex__exact=%00",
    "/admin/patients/patient/?_facets=1&birth_date__year=99999999999",
    "/admin/procedures/patientprocedure/?performed_at__year=99999999999",
    "/admin/procedures/patientprocedure/?performed_at__year=0&performed_at__month=13",
    "/admin/procedures/patientprocedure/?performed_at__gte=2024-13-45",
    "/admin/procedures/patientprocedure/?id__gt=99999999999999999999999",
    "/admin/procedures/patientprocedure/?patient__id__exact=a%00",
    "/admin/recommendations/patientrecommendation/?recommended_at__day=99999999999",
    "/admin/recommendations/patientrecommendation/?recommendation__id__exact=%00",
    "/admin/recommendations/recommendationevent/?created_at__year=99999999999",
    "/admin/recommendations/recommendationdailycount/?day__year=99999999999",
    "/admin/recommendations/notification/?sent_at__month=99999999999",
    "/admin/auth/user/?date_joined__year=99999999999",
    "/admin/auth/user/a%00/change/",
]


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_hostile_admin_urls_never_answer_5xx(staff, url):
    # The test client re-raises any exception that would have been a 500, so this fails loudly on one.
    response = staff.get(url)
    assert response.status_code in {200, 302, 400, 404}, (url, response.status_code)
    if response.status_code == 302:
        assert "e=1" in response["Location"] or response["Location"].startswith("/admin/"), response["Location"]


def test_an_out_of_range_year_filter_is_treated_as_invalid_filters(staff):
    response = staff.get("/admin/patients/patient/?birth_date__year=99999999999")
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


def test_a_nul_in_an_admin_id_is_a_404(staff):
    assert staff.get("/admin/patients/patient/a%00b/change/").status_code == 404


def test_a_nul_in_an_admin_query_parameter_is_a_400(staff):
    assert staff.get("/admin/patients/patient/?q=a%00").status_code == 400


def test_a_valid_filter_still_lists(staff):
    response = staff.get("/admin/patients/patient/?birth_date__year=1980")
    assert response.status_code == 200
    assert b"108" in response.content


def test_every_registered_admin_gets_the_safe_change_list():
    assert admin.site._registry, "nothing registered"
    assert all(isinstance(model_admin, SafeChangeListMixin) for model_admin in admin.site._registry.values())


def test_the_admin_form_refuses_a_definition_name_with_crlf(staff):
    response = staff.post(
        "/admin/recommendations/recommendation/add/",
        {"id": "r-crlf", "name": "Rehab\r\nBcc: x@evil.example", "description": "", "rule": ""},
    )
    assert response.status_code == 200  # the form again, with the error
    assert b"Control characters are not allowed" in response.content
    assert not Recommendation.objects.filter(pk="r-crlf").exists()


def test_the_admin_form_refuses_a_nul_reference(staff):
    patient, procedure = PatientFactory(), ProcedureFactory()
    before = PatientProcedure.objects.count()
    response = staff.post(
        "/admin/procedures/patientprocedure/add/",
        {
            "patient": "a\x00",
            "procedure": procedure.pk,
            "performed_at_0": "2024-01-01",
            "performed_at_1": "10:00:00",
            "report": "",
        },
    )
    assert response.status_code == 200
    assert PatientProcedure.objects.count() == before
    assert patient.pk  # the real patient is untouched


def test_the_admin_form_keeps_newlines_in_free_text(staff):
    programme = RecommendationFactory(id="r-text")
    response = staff.post(
        f"/admin/recommendations/recommendation/{programme.pk}/change/",
        {"id": "r-text", "name": "Rehab", "description": "One\r\nTwo", "rule": ""},
    )
    assert response.status_code == 302, response.content[:2000]
    programme.refresh_from_db()
    assert programme.description == "One\nTwo" or programme.description == "One\r\nTwo"
