"""`/api/v1/patient-recommendations/`: recommendations made to patients by hand or by the engine, and their status."""

from __future__ import annotations

import pytest
from django.core import mail

from patients.tests.factories import PatientFactory
from recommendations.models import EventStatus, PatientRecommendation, RecommendationEvent
from recommendations.tests.factories import PatientRecommendationFactory, RecommendationFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/patient-recommendations/"


def detail(pk: int) -> str:
    return f"{URL}{pk}/"


@pytest.fixture
def patient():
    return PatientFactory(id="108", name="Ada Byron", email="ada@example.org")


@pytest.fixture
def programme():
    return RecommendationFactory(id="por-123", name="Cardiac rehab")


def create(client, patient, programme, **extra):
    body = {"patient": patient.pk, "recommendation": programme.pk, "reason": "Ward round decision.", **extra}
    return client.post(URL, body, format="json")


# --- Create -------------------------------------------------------------------------------------------------


def test_manual_recommendation_is_created_with_its_event(clinician_client, patient, programme):
    response = create(clinician_client, patient, programme)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["patient"] == "108"
    assert body["recommendation"] == "por-123"
    assert body["source"] == "manual"
    assert body["status"] == "active"
    assert body["reason"] == "Ward round decision."
    assert body["recommended_at"]
    link = PatientRecommendation.objects.get(pk=body["id"])
    event = RecommendationEvent.objects.get(patient_recommendation=link)
    assert event.patient_id == "108"
    assert event.recommendation_id == "por-123"
    assert event.payload["reason"] == "Ward round decision."


def test_manual_recommendation_event_is_consumed_and_mailed(
    clinician_client, patient, programme, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = create(clinician_client, patient, programme)
    assert response.status_code == 201, response.content
    event = RecommendationEvent.objects.get(patient_id="108")
    assert event.status == EventStatus.CONSUMED
    assert event.consumed_at is not None
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert "Cardiac rehab" in message.subject and "108" in message.subject
    assert "ada@example.org" in message.bcc
    assert "Ward round decision." in message.body


def test_event_is_listed_for_the_patient(clinician_client, patient, programme):
    link_id = create(clinician_client, patient, programme).json()["id"]
    events = clinician_client.get("/api/v1/events/", {"patient": "108"}).json()["results"]
    assert [(e["patient"], e["recommendation"], e["patient_recommendation"]) for e in events] == [
        ("108", "por-123", link_id)
    ]


def test_numeric_patient_id_is_accepted(clinician_client, patient, programme):
    response = clinician_client.post(URL, {"patient": 108, "recommendation": "por-123"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["patient"] == "108"


def test_unknown_patient_or_recommendation_is_400(clinician_client, patient, programme):
    response = clinician_client.post(URL, {"patient": "nobody", "recommendation": "nothing"}, format="json")
    assert response.status_code == 400
    assert {"patient", "recommendation"} <= set(response.json())
    assert not PatientRecommendation.objects.exists()
    assert not RecommendationEvent.objects.exists()


def test_second_active_recommendation_for_same_patient_is_400(clinician_client, patient, programme):
    first = create(clinician_client, patient, programme)
    second = create(clinician_client, patient, programme)
    assert second.status_code == 400
    assert "recommendation" in second.json()
    assert str(first.json()["id"]) in second.json()["recommendation"][0]
    assert PatientRecommendation.objects.count() == 1
    assert RecommendationEvent.objects.count() == 1


def test_same_programme_for_another_patient_is_fine(clinician_client, patient, programme):
    create(clinician_client, patient, programme)
    response = create(clinician_client, PatientFactory(), programme)
    assert response.status_code == 201, response.content


def test_new_active_allowed_after_completing_the_previous(clinician_client, patient, programme):
    first = create(clinician_client, patient, programme).json()
    patched = clinician_client.patch(detail(first["id"]), {"status": "completed"}, format="json")
    assert patched.status_code == 200, patched.content
    assert patched.json()["status"] == "completed"
    second = create(clinician_client, patient, programme)
    assert second.status_code == 201, second.content
    # Two new recommendations, and the completion announced to the order systems in between.
    assert list(RecommendationEvent.objects.order_by("pk").values_list("event_type", flat=True)) == [
        "recommendation.created",
        "recommendation.status_changed",
        "recommendation.created",
    ]


def test_reactivating_while_another_is_active_is_400(clinician_client, patient, programme):
    old = PatientRecommendationFactory(patient=patient, recommendation=programme, status="dismissed")
    PatientRecommendationFactory(patient=patient, recommendation=programme, status="active")
    response = clinician_client.patch(detail(old.pk), {"status": "active"}, format="json")
    assert response.status_code == 400
    assert "recommendation" in response.json()
    old.refresh_from_db()
    assert old.status == "dismissed"


@pytest.mark.parametrize("field, value", [("status", "cancelled"), ("source", "oracle")])
def test_bad_choice_is_400_naming_it(clinician_client, patient, programme, field, value):
    response = create(clinician_client, patient, programme, **{field: value})
    assert response.status_code == 400
    assert field in response.json()
    assert not PatientRecommendation.objects.exists()


def test_bad_status_on_patch_is_400(clinician_client, patient, programme):
    link = PatientRecommendationFactory(patient=patient, recommendation=programme)
    response = clinician_client.patch(detail(link.pk), {"status": "done"}, format="json")
    assert response.status_code == 400
    assert "status" in response.json()


def test_create_with_explicit_time_and_status(clinician_client, patient, programme):
    response = create(clinician_client, patient, programme, recommended_at="2025-01-02T03:04:05Z", status="completed")
    assert response.status_code == 201, response.content
    assert response.json()["recommended_at"].startswith("2025-01-02T03:04:05")
    assert response.json()["status"] == "completed"


# --- Read: filters and expand ------------------------------------------------------------------------------


@pytest.fixture
def several(patient, programme):
    other_patient = PatientFactory(id="205")
    other_programme = RecommendationFactory(id="por-456")
    return {
        "a": PatientRecommendationFactory(patient=patient, recommendation=programme, status="active"),
        "b": PatientRecommendationFactory(patient=patient, recommendation=other_programme, status="completed"),
        "c": PatientRecommendationFactory(patient=other_patient, recommendation=programme, status="active"),
        "d": PatientRecommendationFactory(patient=other_patient, recommendation=other_programme, status="dismissed"),
    }


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"patient": "108"}, {"a", "b"}),
        ({"recommendation": "por-123"}, {"a", "c"}),
        ({"status": "active"}, {"a", "c"}),
        ({"patient": "205", "status": "dismissed"}, {"d"}),
        ({"patient": "108", "recommendation": "por-456", "status": "completed"}, {"b"}),
        ({"patient": "nobody"}, set()),
        ({}, {"a", "b", "c", "d"}),
    ],
)
def test_filters(viewer_client, several, params, expected):
    response = viewer_client.get(URL, params)
    assert response.status_code == 200
    ids = {row["id"] for row in response.json()["results"]}
    assert ids == {several[key].pk for key in expected}
    assert response.json()["count"] == len(expected)


def test_unknown_status_filter_is_400(viewer_client, several):
    response = viewer_client.get(URL, {"status": "cancelled"})
    assert response.status_code == 400
    assert "status" in response.json()


def test_expand_nests_patient_and_recommendation(viewer_client, several):
    response = viewer_client.get(URL, {"patient": "108", "expand": "patient,recommendation"})
    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == 2
    for row in rows:
        assert row["patient"]["id"] == "108"
        assert row["patient"]["name"] == "Ada Byron"
        assert row["recommendation"]["id"] in {"por-123", "por-456"}
        assert "name" in row["recommendation"]


def test_expand_one_keeps_the_other_as_id(viewer_client, several):
    row = viewer_client.get(detail(several["a"].pk), {"expand": "recommendation"}).json()
    assert row["patient"] == "108"
    assert row["recommendation"] == {
        "id": "por-123",
        "name": "Cardiac rehab",
        "description": "A care programme.",
        "rule": None,
        "manual_only": True,
    }


def test_expanded_list_does_not_query_per_row(viewer_client, several, django_assert_num_queries):
    for _ in range(10):
        PatientRecommendationFactory()
    # The request's savepoint and its release, the read cache's version tokens, the user and their user and group
    # permissions (this client's first request takes its role snapshot), the count, and one page with both
    # relations joined: the same 8 whatever the number of rows.
    with django_assert_num_queries(8):
        response = viewer_client.get(URL, {"expand": "patient,recommendation"})
    assert response.json()["count"] == 14


def test_unknown_expand_is_400(viewer_client, several):
    response = viewer_client.get(URL, {"expand": "procedure"})
    assert response.status_code == 400
    assert "expand" in response.json()


# --- Update and delete -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "patch"])
def test_body_id_other_than_path_is_400(clinician_client, patient, programme, method):
    link = PatientRecommendationFactory(patient=patient, recommendation=programme)
    body = {"id": link.pk + 1000, "patient": "108", "recommendation": "por-123", "status": "completed"}
    response = getattr(clinician_client, method)(detail(link.pk), body, format="json")
    assert response.status_code == 400
    assert "id" in response.json()
    link.refresh_from_db()
    assert link.status == "active"


def test_put_replaces_the_recommendation(clinician_client, patient, programme):
    link = PatientRecommendationFactory(patient=patient, recommendation=programme)
    body = {"id": link.pk, "patient": "108", "recommendation": "por-123", "status": "dismissed", "reason": "Declined."}
    response = clinician_client.put(detail(link.pk), body, format="json")
    assert response.status_code == 200, response.content
    link.refresh_from_db()
    assert (link.status, link.reason) == ("dismissed", "Declined.")


def test_status_change_is_seen_by_the_next_read(clinician_client, patient, programme):
    link = PatientRecommendationFactory(patient=patient, recommendation=programme)
    assert clinician_client.get(detail(link.pk)).json()["status"] == "active"
    assert clinician_client.get(URL, {"status": "active"}).json()["count"] == 1
    clinician_client.patch(detail(link.pk), {"status": "completed"}, format="json")
    assert clinician_client.get(detail(link.pk)).json()["status"] == "completed"
    assert clinician_client.get(URL, {"status": "active"}).json()["count"] == 0


def test_patient_rename_is_seen_in_expanded_reads(clinician_client, patient, programme):
    link = PatientRecommendationFactory(patient=patient, recommendation=programme)
    assert clinician_client.get(detail(link.pk), {"expand": "patient"}).json()["patient"]["name"] == "Ada Byron"
    clinician_client.patch("/api/v1/patients/108/", {"name": "Ada Lovelace"}, format="json")
    assert clinician_client.get(detail(link.pk), {"expand": "patient"}).json()["patient"]["name"] == "Ada Lovelace"


def test_delete_keeps_the_event_history(admin_client_jwt, patient, programme):
    link_id = create(admin_client_jwt, patient, programme).json()["id"]
    event = RecommendationEvent.objects.get(patient_recommendation_id=link_id)
    response = admin_client_jwt.delete(detail(link_id))
    assert response.status_code == 204
    assert not PatientRecommendation.objects.filter(pk=link_id).exists()
    event.refresh_from_db()
    assert event.patient_recommendation is None
    assert (event.patient_id, event.recommendation_id) == ("108", "por-123")
    assert admin_client_jwt.get(detail(link_id)).status_code == 404


def test_unknown_link_is_404(viewer_client, db):
    assert viewer_client.get(detail(999999)).status_code == 404
