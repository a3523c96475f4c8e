"""The Django admin clinical staff use: every model's pages, the patient page's inlines, search, the evaluate
action, read-only events and notifications, and what each role may do there."""

from __future__ import annotations

from datetime import date

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from conftest import make_user
from patients.models import Patient, PatientMerge
from patients.tests.factories import PatientFactory
from procedures.tests.factories import PatientProcedureFactory, ProcedureFactory
from recommendations.models import (
    Delivery,
    Notification,
    PatientRecommendation,
    Recommendation,
    RecommendationDailyCount,
    RecommendationEvent,
)
from recommendations.tests.factories import PatientRecommendationFactory, RecommendationFactory
from security.roles import CLINICIAN, VIEWER

pytestmark = pytest.mark.django_db

READ_ONLY_MODELS = {RecommendationEvent, Notification, RecommendationDailyCount}
# Refresh tokens are issued by logging in, never typed in (security/tests/test_token_admin.py tests their page);
# the role groups are defined by the code (security/roles.py).
NOT_ADDABLE_MODELS = READ_ONLY_MODELS | {OutstandingToken, Group}
# Login attempts and access logs are recorded by django-axes, never typed in (its admin offers no "add").
NOT_ADDABLE_MODELS |= {AccessAttempt, AccessFailureLog, AccessLog}
# A merge is made by the "Merge into…" action, never typed in; its record is read-only.
NOT_ADDABLE_MODELS |= {PatientMerge}
# Deliveries are written by the worker.
NOT_ADDABLE_MODELS |= {Delivery}


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def superuser_client() -> Client:
    user = get_user_model().objects.create_superuser("root", password="Str0ng-pass!word")
    client = Client()
    client.force_login(user)
    return client


def staff_client(username: str, role: str) -> Client:
    client = Client()
    client.force_login(make_user(username, role, is_staff=True))
    return client


@pytest.fixture
def hospital():
    """A little of everything, so each changelist renders real rows and columns."""
    patient = PatientFactory(id="108", name="Ada Byron")
    procedure = ProcedureFactory(id="knee-1", name="Knee arthroscopy")
    history = PatientProcedureFactory(patient=patient, procedure=procedure)
    programme = RecommendationFactory(id="por-123", name="Cardiac rehab")
    link = PatientRecommendationFactory(patient=patient, recommendation=programme)
    event = RecommendationEvent.objects.create(
        patient_id=patient.pk, recommendation_id=programme.pk, patient_recommendation=link, payload={"reason": "x"}
    )
    notification = Notification.objects.create(
        event=event, recipients=["care-team@localhost"], subject="Cardiac rehab for 108", body="Body."
    )
    count = RecommendationDailyCount.objects.create(
        recommendation_id=programme.pk, name=programme.name, day=date(2025, 1, 2), count=3
    )
    return {
        "patient": patient,
        "procedure": procedure,
        "history": history,
        "programme": programme,
        "link": link,
        "event": event,
        "notification": notification,
        "count": count,
    }


# --- Every registered model ------------------------------------------------------------------------------


def registered_models():
    return sorted(admin.site._registry, key=lambda model: model._meta.label)


def test_every_registered_model_changelist_renders(superuser_client, hospital):
    failures = []
    for model in registered_models():
        response = superuser_client.get(admin_url(model, "changelist"))
        if response.status_code != 200:
            failures.append(f"{model._meta.label}: {response.status_code}")
    assert not failures, failures


def test_every_registered_model_changelist_renders_with_its_filters_and_search(superuser_client, hospital):
    failures = []
    for model in registered_models():
        response = superuser_client.get(admin_url(model, "changelist"), {"q": "108"})
        if response.status_code != 200:
            failures.append(f"{model._meta.label}: {response.status_code}")
    assert not failures, failures


def test_every_editable_model_add_page_renders(superuser_client, db):
    failures = []
    for model in registered_models():
        response = superuser_client.get(admin_url(model, "add"))
        expected = 403 if model in NOT_ADDABLE_MODELS else 200
        if response.status_code != expected:
            failures.append(f"{model._meta.label}: {response.status_code}, expected {expected}")
    assert not failures, failures


def test_every_object_page_renders(superuser_client, hospital):
    failures = []
    for model in registered_models():
        for obj in model._default_manager.all()[:3]:
            response = superuser_client.get(admin_url(model, "change", obj.pk))
            if response.status_code != 200:
                failures.append(f"{model._meta.label} {obj.pk}: {response.status_code}")
    assert not failures, failures


def test_clinical_models_are_registered():
    from procedures.models import PatientProcedure, Procedure

    expected = {Patient, Procedure, PatientProcedure, Recommendation, PatientRecommendation, *READ_ONLY_MODELS}
    assert expected <= set(admin.site._registry)


# --- The patient page ------------------------------------------------------------------------------------


def test_patient_page_shows_procedure_history_and_recommendations(superuser_client, hospital):
    response = superuser_client.get(admin_url(Patient, "change", "108"))
    assert response.status_code == 200
    inline_models = {formset.opts.model for formset in response.context["inline_admin_formsets"]}
    assert inline_models == {PatientRecommendation}  # the history is a timeline above, each entry one click away
    content = response.content.decode()
    assert "Knee arthroscopy" in content
    assert admin_url(type(hospital["history"]), "change", hospital["history"].pk) in content
    assert "Cardiac rehab" in content
    assert hospital["link"].reason in content


def test_patient_list_search_matches_name_and_id(superuser_client, hospital):
    PatientFactory(id="205", name="Grace Hopper")
    by_name = superuser_client.get(admin_url(Patient, "changelist"), {"q": "Hopper"})
    assert [p.pk for p in by_name.context["cl"].result_list] == ["205"]
    by_id = superuser_client.get(admin_url(Patient, "changelist"), {"q": "108"})
    assert [p.pk for p in by_id.context["cl"].result_list] == ["108"]
    nothing = superuser_client.get(admin_url(Patient, "changelist"), {"q": "Nobody"})
    assert list(nothing.context["cl"].result_list) == []


def test_patient_list_filters_by_chronic_pain(superuser_client, db):
    PatientFactory(id="1", chronic_pain=True)
    PatientFactory(id="2", chronic_pain=False)
    response = superuser_client.get(admin_url(Patient, "changelist"), {"chronic_pain__exact": "1"})
    assert [p.pk for p in response.context["cl"].result_list] == ["1"]


# --- The evaluate action -----------------------------------------------------------------------------------


def run_evaluate_action(client: Client, patient_ids: list[str]):
    return client.post(
        admin_url(Patient, "changelist"),
        {"action": "evaluate_selected", "_selected_action": patient_ids},
        follow=True,
    )


def test_evaluate_action_recommends_and_reports(superuser_client, db):
    PatientFactory(id="old-pain", name="Old Pain", birth_date=date(1940, 1, 1), chronic_pain=True)
    PatientFactory(id="heavy", name="Heavy", bmi=35.0)
    PatientFactory(id="fine", name="Fine")
    response = run_evaluate_action(superuser_client, ["old-pain", "heavy", "fine"])
    assert response.status_code == 200
    made = set(PatientRecommendation.objects.values_list("patient_id", "recommendation__rule"))
    assert made == {("old-pain", "physical_therapy"), ("heavy", "weight_management")}
    assert RecommendationEvent.objects.count() == 2
    text = "\n".join(str(message) for message in response.context["messages"])
    assert "Physical Therapy (new" in text
    assert "Weight Management Program (new" in text
    assert "Fine (fine): nothing to recommend." in text


def test_evaluate_action_twice_reports_already_active(superuser_client, db):
    PatientFactory(id="heavy", name="Heavy", bmi=35.0)
    run_evaluate_action(superuser_client, ["heavy"])
    response = run_evaluate_action(superuser_client, ["heavy"])
    text = "\n".join(str(message) for message in response.context["messages"])
    assert "already active" in text
    assert PatientRecommendation.objects.count() == 1


def test_evaluate_action_is_offered_to_clinicians_not_viewers(db):
    def actions(client: Client) -> set[str]:
        response = client.get(admin_url(Patient, "changelist"))
        assert response.status_code == 200
        form = response.context["action_form"]  # None when the user may run no action at all
        return {name for name, _ in form.fields["action"].choices} if form is not None else set()

    assert "evaluate_selected" in actions(staff_client("ward-clinician", CLINICIAN))
    assert "evaluate_selected" not in actions(staff_client("ward-viewer", VIEWER))


# --- Read-only events and notifications --------------------------------------------------------------------


@pytest.mark.parametrize("model", sorted(READ_ONLY_MODELS, key=lambda m: m._meta.label))
def test_system_records_cannot_be_added_changed_or_deleted(superuser_client, hospital, model):
    obj = model._default_manager.get()
    assert superuser_client.get(admin_url(model, "add")).status_code == 403
    assert superuser_client.get(admin_url(model, "delete", obj.pk)).status_code == 403
    page = superuser_client.get(admin_url(model, "change", obj.pk))
    assert page.status_code == 200  # visible for support
    assert b'name="_save"' not in page.content
    assert superuser_client.post(admin_url(model, "change", obj.pk), {}).status_code == 403


def test_event_list_shows_status_and_attempts(superuser_client, hospital):
    response = superuser_client.get(admin_url(RecommendationEvent, "changelist"))
    content = response.content.decode()
    assert "column-status" in content and "column-attempts" in content
    assert [e.pk for e in response.context["cl"].result_list] == [hospital["event"].pk]


# --- Roles in the admin ----------------------------------------------------------------------------------


def test_clinician_sees_and_edits_patients_but_not_the_procedure_catalogue(hospital):
    client = staff_client("ward-clinician", CLINICIAN)
    assert client.get(admin_url(Patient, "changelist")).status_code == 200
    assert client.get(admin_url(Patient, "add")).status_code == 200
    assert client.get(admin_url(Patient, "change", "108")).status_code == 200
    assert client.get(admin_url(type(hospital["procedure"]), "changelist")).status_code == 200
    assert client.get(admin_url(type(hospital["procedure"]), "add")).status_code == 403
    assert client.get(admin_url(Recommendation, "add")).status_code == 403
    assert client.get(admin_url(Patient, "delete", "108")).status_code == 403


def test_staff_without_role_is_refused_patients(db):
    client = Client()
    client.force_login(make_user("bare-staff", None, is_staff=True))
    assert client.get(admin_url(Patient, "changelist")).status_code == 403


def test_anonymous_is_sent_to_the_admin_login(client, db):
    response = client.get(admin_url(Patient, "changelist"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


# --- Editing a patient in the admin -------------------------------------------------------------------------

NO_INLINE_ROWS = {
    f"{prefix}-{field}": value
    for prefix in ("procedures", "recommendations")
    for field, value in (
        ("TOTAL_FORMS", "0"),
        ("INITIAL_FORMS", "0"),
        ("MIN_NUM_FORMS", "0"),
        ("MAX_NUM_FORMS", "1000"),
    )
}


def patient_form(**fields) -> dict:
    return {"name": "Ada Byron", "sex": "female", "birth_date": "1950-01-01", **NO_INLINE_ROWS, **fields}


def test_admin_add_patient_computes_missing_bmi(superuser_client, db):
    response = superuser_client.post(
        admin_url(Patient, "add"), patient_form(id="108", height_cm="170", weight_kg="95", bmi="")
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert Patient.objects.get(pk="108").bmi == 32.9


def test_admin_add_patient_keeps_a_given_bmi(superuser_client, db):
    superuser_client.post(admin_url(Patient, "add"), patient_form(id="108", height_cm="170", weight_kg="95", bmi="31"))
    assert Patient.objects.get(pk="108").bmi == 31


def test_admin_weight_change_updates_bmi(superuser_client, db):
    PatientFactory(id="108", height_cm=170.0, weight_kg=70.0, bmi=24.2)
    response = superuser_client.post(
        admin_url(Patient, "change", "108"), patient_form(height_cm="170", weight_kg="95", bmi="24.2")
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert Patient.objects.get(pk="108").bmi == 32.9


def test_admin_name_change_leaves_bmi_alone(superuser_client, db):
    PatientFactory(id="108", height_cm=170.0, weight_kg=70.0, bmi=25.0)
    superuser_client.post(
        admin_url(Patient, "change", "108"), patient_form(name="Ada L.", height_cm="170", weight_kg="70", bmi="25")
    )
    patient = Patient.objects.get(pk="108")
    assert (patient.name, patient.bmi) == ("Ada L.", 25.0)


def test_admin_definitions_without_rule_may_coexist(superuser_client, db):
    for pk in ("por-1", "por-2"):
        response = superuser_client.post(
            admin_url(Recommendation, "add"), {"id": pk, "name": f"Programme {pk}", "description": "", "rule": ""}
        )
        assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert list(Recommendation.objects.filter(pk__in=["por-1", "por-2"]).values_list("rule", flat=True)) == [None, None]


def test_admin_refuses_a_second_definition_for_a_rule(superuser_client, db):
    response = superuser_client.post(
        admin_url(Recommendation, "add"),
        {"id": "pt-2", "name": "PT again", "description": "", "rule": "physical_therapy"},
    )
    assert response.status_code == 200
    assert "rule" in response.context["adminform"].form.errors
    assert not Recommendation.objects.filter(pk="pt-2").exists()


def test_recommendation_added_in_the_admin_is_announced_with_an_event(superuser_client, db):
    patient = PatientFactory(id="108")
    programme = RecommendationFactory(id="por-7")
    response = superuser_client.post(
        admin_url(PatientRecommendation, "add"),
        {
            "patient": patient.pk,
            "recommendation": programme.pk,
            "recommended_at_0": "2026-01-05",
            "recommended_at_1": "10:00:00",
            "source": "manual",
            "reason": "Ward round",
            "status": "active",
        },
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    link = PatientRecommendation.objects.get(patient=patient, recommendation=programme)
    event = RecommendationEvent.objects.get(patient_recommendation=link)
    assert (event.patient_id, event.recommendation_id, event.payload["reason"]) == ("108", "por-7", "Ward round")


def test_recommendation_added_inline_on_the_patient_page_is_announced_with_an_event(superuser_client, db):
    PatientFactory(id="108", name="Ada Byron", birth_date=date(1950, 1, 1))
    programme = RecommendationFactory(id="por-8")
    form = patient_form(
        **{
            "recommendations-TOTAL_FORMS": "1",
            "recommendations-0-recommendation": programme.pk,
            "recommendations-0-status": "active",
        }
    )
    response = superuser_client.post(admin_url(Patient, "change", "108"), form)
    assert response.status_code == 302, response.context and [
        f.errors for f in response.context["inline_admin_formsets"]
    ]
    assert RecommendationEvent.objects.filter(patient_id="108", recommendation_id="por-8").count() == 1
