"""The admin as a clinical lead uses it: rule-set versions (edit → new version, activation with a reason, the
impact report on the version's page) and the patient page's "Evaluate" and "Preview" buttons.
"""

from __future__ import annotations

import pytest

from conftest import make_user
from patients.tests.factories import PatientFactory
from recommendations.engine import RULES
from recommendations.models import PatientRecommendation, RecommendationEvent, RuleSet, RuleSetActivation
from recommendations.services import active_rule_set, create_rule_set
from recommendations.tests.factories import RecommendationFactory
from recommendations.tests.test_dry_run import row_counts
from security.roles import CLINICIAN, VIEWER

pytestmark = pytest.mark.django_db

RULE_SETS = "/admin/recommendations/ruleset/"


def form_data(**overrides) -> dict[str, object]:
    """The rule-set form as the admin shows it for the defaults, with some fields changed."""
    data: dict[str, object] = {"note": "", "activations-TOTAL_FORMS": 0, "activations-INITIAL_FORMS": 0}
    for rule in RULES.values():
        data[f"{rule.key}__enabled"] = "on"
        for parameter in rule.parameters:
            value = parameter.default
            data[f"{rule.key}__{parameter.key}"] = ", ".join(value) if isinstance(value, list) else value
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def test_adding_a_version_in_the_admin_creates_an_inactive_one(client, admin_user_session):
    response = client.post(f"{RULE_SETS}add/", form_data(weight_management__min_bmi=32, note="Stricter"))

    assert response.status_code == 302, response.content.decode()[:2000]
    created = RuleSet.objects.get(version=2)
    assert (created.active, created.note, created.created_by) == (False, "Stricter", admin_user_session)
    assert created.parameters["weight_management"]["min_bmi"] == 32.0


def test_editing_a_version_saves_a_new_one_and_leaves_the_old_unchanged(client, admin_user_session):
    original = RuleSet.objects.get(version=1).parameters

    response = client.post(
        f"{RULE_SETS}1/change/",
        form_data(post_op_rehab__departments="Orthopaedics, Neurosurgery", physical_therapy__enabled=None),
    )

    assert response.status_code == 302
    assert RuleSet.objects.get(version=1).parameters == original
    edited = RuleSet.objects.get(version=2)
    assert edited.parameters["post_op_rehab"]["departments"] == ["neurosurgery", "orthopaedics"]
    assert edited.parameters["physical_therapy"]["enabled"] is False
    assert active_rule_set().version == 1
    assert list(RuleSet.objects.filter(active=True).values_list("version", flat=True)) == [1]


def test_saving_an_unchanged_version_creates_nothing(client, admin_user_session):
    response = client.post(f"{RULE_SETS}1/change/", form_data(note=RuleSet.objects.get(version=1).note))

    assert response.status_code == 302
    assert RuleSet.objects.count() == 1


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("weight_management__min_bmi", 0, "parameters.weight_management.min_bmi"),
        ("weight_management__min_bmi", 200, "parameters.weight_management.min_bmi"),
        ("post_op_rehab__departments", " , ", "parameters.post_op_rehab.departments"),
        ("post_op_rehab__window_days", -3, "parameters.post_op_rehab.window_days"),
    ],
)
def test_invalid_parameters_are_refused_in_the_admin_naming_the_field(client, admin_user_session, field, value, named):
    response = client.post(f"{RULE_SETS}add/", form_data(**{field: value}))

    assert response.status_code == 200
    assert named in response.content.decode()
    assert RuleSet.objects.count() == 1


def test_activation_in_the_admin_needs_a_reason_and_is_recorded(client, admin_user_session):
    create_rule_set(parameters={"weight_management": {"min_bmi": 32}})

    refused = client.post(f"{RULE_SETS}2/activate/", {"reason": "  "}, follow=True)
    assert "Say why" in refused.content.decode()
    assert active_rule_set().version == 1

    response = client.post(f"{RULE_SETS}2/activate/", {"reason": "Audit 2026"})

    assert response.status_code == 302
    assert active_rule_set().version == 2
    record = RuleSetActivation.objects.get(rule_set_id=2)
    assert (record.reason, record.activated_by, record.previous_version) == ("Audit 2026", admin_user_session, 1)


def test_a_viewer_cannot_activate_in_the_admin(client):
    client.force_login(make_user("reader", VIEWER, is_staff=True))
    create_rule_set(parameters={"weight_management": {"min_bmi": 32}})

    response = client.post(f"{RULE_SETS}2/activate/", {"reason": "I would like to"})

    assert response.status_code == 403
    assert active_rule_set().version == 1


def test_a_versions_page_shows_the_impact_report_and_the_activation_form(client, admin_user_session):
    PatientFactory(id="heavy-1", bmi=31.0)
    create_rule_set(parameters={"weight_management": {"min_bmi": 32}})

    page = client.get(f"{RULE_SETS}2/change/").content.decode()

    assert 'id="impact-report"' in page
    assert "compared with the active version 1" in page
    assert "heavy-1" in page
    assert 'id="activate-form"' in page


# --- the patient page -----------------------------------------------------------------------------------------


def test_the_patient_page_has_evaluate_and_preview_buttons_for_clinicians(client):
    client.force_login(make_user("ward-nurse", CLINICIAN, is_staff=True))
    patient = PatientFactory(bmi=34.0)

    page = client.get(f"/admin/patients/patient/{patient.pk}/change/").content.decode()

    assert 'id="evaluate-button"' in page
    assert 'id="preview-button"' in page


def test_viewers_see_neither_button(client):
    client.force_login(make_user("reader", VIEWER, is_staff=True))
    patient = PatientFactory(bmi=34.0)

    page = client.get(f"/admin/patients/patient/{patient.pk}/change/").content.decode()

    assert "preview-button" not in page
    assert client.post(f"/admin/patients/patient/{patient.pk}/preview/").status_code == 403


def test_preview_in_the_admin_shows_the_findings_and_records_nothing(client, admin_user_session):
    patient = PatientFactory(bmi=34.6)
    before = row_counts()

    response = client.post(f"/admin/patients/patient/{patient.pk}/preview/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Weight Management Program" in page
    assert "BMI 34.6 &gt; 30" in page
    assert "would be new" in page
    assert row_counts() == before


def test_evaluate_in_the_admin_records_and_returns_to_the_patient(client, admin_user_session):
    patient = PatientFactory(bmi=34.6)

    response = client.post(f"/admin/patients/patient/{patient.pk}/evaluate/")

    assert response.status_code == 302
    assert response["Location"].endswith(f"/admin/patients/patient/{patient.pk}/change/")
    link = PatientRecommendation.objects.get(patient=patient)
    assert link.provenance["rule"] == "weight_management"
    assert RecommendationEvent.objects.filter(patient_recommendation=link).exists()


def test_the_buttons_only_answer_post(client, admin_user_session):
    patient = PatientFactory(bmi=34.6)

    assert client.get(f"/admin/patients/patient/{patient.pk}/preview/").status_code == 405
    assert client.get(f"/admin/patients/patient/{patient.pk}/evaluate/").status_code == 405
    assert not PatientRecommendation.objects.filter(patient=patient).exists()


def test_a_recommendation_added_inline_on_the_patient_page_records_who_made_it(client, admin_user_session):
    patient = PatientFactory(bmi=22.0, height_cm=None, weight_kg=None)
    programme = RecommendationFactory(id="por-123")
    data = {
        "name": patient.name,
        "birth_date": patient.birth_date.isoformat(),
        "sex": patient.sex,
        "bmi": "22.0",
        "email": "",
        "procedures-TOTAL_FORMS": 0,
        "procedures-INITIAL_FORMS": 0,
        "recommendations-TOTAL_FORMS": 1,
        "recommendations-INITIAL_FORMS": 0,
        "recommendations-0-recommendation": programme.pk,
        "recommendations-0-status": "active",
    }

    response = client.post(f"/admin/patients/patient/{patient.pk}/change/", data)

    assert response.status_code == 302, response.content.decode()[:3000]
    link = PatientRecommendation.objects.get(patient=patient)
    assert (link.provenance["recorded_by"], link.provenance["via"]) == ("lead", "admin")
    assert RecommendationEvent.objects.get(patient_recommendation=link).payload["provenance"] == link.provenance


def test_versions_cannot_be_deleted_in_the_admin(client, admin_user_session):
    assert client.get(f"{RULE_SETS}1/delete/").status_code == 403
    assert RuleSet.objects.filter(version=1).exists()
