"""Patient merge: a duplicate folded into the record that stays, with nothing lost and a 410 tombstone left."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from patients.models import Patient, PatientMerge, Sex
from patients.tests.factories import PatientFactory
from procedures.models import PatientProcedure
from procedures.tests.factories import PatientProcedureFactory, ProcedureFactory
from recommendations.models import PatientRecommendation, RecommendationEvent
from recommendations.services import announce_recommendation, merge
from recommendations.tests.factories import PatientRecommendationFactory, RecommendationFactory

pytestmark = pytest.mark.django_db


def merge_url(target_id: str) -> str:
    return f"/api/v1/patients/{target_id}/merge/"


@pytest.fixture
def pair():
    """A target and its duplicate: one shared procedure instant, one shared active programme, own records."""
    now = timezone.now()
    target = PatientFactory(id="keep", email="", height_cm=None, weight_kg=None, bmi=None, sex=Sex.UNKNOWN)
    source = PatientFactory(id="dup", email="dup@example.org", height_cm=180.0, weight_kg=81.0, bmi=25.0)
    hip, knee = ProcedureFactory(id="hip"), ProcedureFactory(id="knee")
    shared_at = now - datetime.timedelta(days=5)
    PatientProcedureFactory(patient=target, procedure=hip, performed_at=shared_at)
    PatientProcedureFactory(patient=source, procedure=hip, performed_at=shared_at)  # the same fact twice
    PatientProcedureFactory(patient=source, procedure=knee, performed_at=now - datetime.timedelta(days=40))
    physio, diet = RecommendationFactory(id="physio"), RecommendationFactory(id="diet")
    older = PatientRecommendationFactory(
        patient=source, recommendation=physio, recommended_at=now - datetime.timedelta(days=9)
    )
    newer = PatientRecommendationFactory(
        patient=target, recommendation=physio, recommended_at=now - datetime.timedelta(days=2)
    )
    own = PatientRecommendationFactory(patient=source, recommendation=diet, status="completed")
    event = announce_recommendation(link=own, publish=False)
    return {"target": target, "source": source, "older": older, "newer": newer, "own": own, "event": event}


def test_merge_moves_everything_collapses_duplicates_and_fills_empty_fields(admin_client_jwt, pair):
    assert PatientProcedure.objects.count() == 3 and PatientRecommendation.objects.count() == 3

    response = admin_client_jwt.post(merge_url("keep"), {"source": "dup"})

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["source"], body["target"], body["merged_by"]) == ("dup", "keep", "admin-user")
    assert body["evaluation"] is None  # only with ?evaluate=true; always present, as the schema says
    # Procedures: the duplicate instant collapsed into the target's, the other moved; nothing else lost.
    assert PatientProcedure.objects.count() == 2
    assert set(PatientProcedure.objects.filter(patient_id="keep").values_list("procedure_id", flat=True)) == {
        "hip",
        "knee",
    }
    assert len(body["collapsed"]["procedures"]) == 1 and len(body["moved"]["procedures"]) == 1
    # Recommendations: all three now the target's; of two active physio links the older stays active.
    assert PatientRecommendation.objects.filter(patient_id="keep").count() == 3
    statuses = dict(PatientRecommendation.objects.values_list("pk", "status"))
    assert statuses[pair["older"].pk] == "active"
    assert statuses[pair["newer"].pk] == "merged"
    assert statuses[pair["own"].pk] == "completed"
    assert body["collapsed"]["recommendations"] == [pair["newer"].pk]
    # The events' copied patient id follows.
    assert RecommendationEvent.objects.get(pk=pair["event"].pk).patient_id == "keep"
    # Empty demographics filled from the source, set ones untouched.
    target = Patient.objects.get(pk="keep")
    assert (target.email, target.height_cm, target.weight_kg, target.bmi) == ("dup@example.org", 180.0, 81.0, 25.0)
    assert target.name == pair["target"].name and target.sex == Sex.FEMALE
    assert sorted(body["moved"]["demographics"]) == ["bmi", "email", "height_cm", "sex", "weight_kg"]
    # The source is a tombstone, and the merge is recorded.
    assert Patient.objects.get(pk="dup").merged_into_id == "keep"
    record = PatientMerge.objects.get()
    assert (record.source_id, record.target_id, record.merged_by.username) == ("dup", "keep", "admin-user")


def test_a_failure_half_way_leaves_both_patients_as_they_were(admin_client_jwt, pair, monkeypatch):
    def broken(plan):
        raise RuntimeError("the database went away half-way")

    monkeypatch.setattr(merge, "_move_events", broken)  # procedures and links already moved when it fails
    before = (
        sorted(PatientProcedure.objects.values_list("pk", "patient_id")),
        sorted(PatientRecommendation.objects.values_list("pk", "patient_id", "status")),
    )
    admin_client_jwt.raise_request_exception = False

    response = admin_client_jwt.post(merge_url("keep"), {"source": "dup"})

    assert response.status_code == 500
    after = (
        sorted(PatientProcedure.objects.values_list("pk", "patient_id")),
        sorted(PatientRecommendation.objects.values_list("pk", "patient_id", "status")),
    )
    assert after == before
    assert Patient.objects.get(pk="dup").merged_into_id is None
    assert Patient.objects.get(pk="keep").email == ""
    assert not PatientMerge.objects.exists()


@pytest.mark.parametrize(
    ("method", "body"),
    [("get", None), ("put", {"id": "dup", "name": "X"}), ("patch", {"name": "X"}), ("delete", None)],
)
def test_a_tombstone_answers_410_with_its_pointer_on_every_verb(admin_client_jwt, pair, method, body):
    assert admin_client_jwt.get("/api/v1/patients/dup/").status_code == 200  # cached: the merge must end that
    assert admin_client_jwt.post(merge_url("keep"), {"source": "dup"}).status_code == 201

    response = getattr(admin_client_jwt, method)("/api/v1/patients/dup/", body)

    assert response.status_code == 410
    assert response.json()["merged_into"] == "keep"
    assert "merged into 'keep'" in response.json()["detail"]
    assert Patient.objects.get(pk="dup").name == pair["source"].name


def test_a_tombstone_drops_out_of_lists_search_and_evaluation(admin_client_jwt, pair):
    admin_client_jwt.get("/api/v1/patients/")  # cached before the merge: the merge must make it stale
    admin_client_jwt.post(merge_url("keep"), {"source": "dup"})

    ids = [item["id"] for item in admin_client_jwt.get("/api/v1/patients/").json()["results"]]
    assert ids == ["keep"]
    assert admin_client_jwt.get("/api/v1/patients/?search=dup").json()["count"] == 0
    evaluation = admin_client_jwt.post("/api/v1/patients/dup/evaluate/")
    assert evaluation.status_code == 410 and evaluation.json()["merged_into"] == "keep"


def test_evaluate_true_returns_the_merged_patients_evaluation(admin_client_jwt, pair):
    response = admin_client_jwt.post(merge_url("keep") + "?evaluate=true", {"source": "dup"})

    assert response.status_code == 201
    assert response.json()["evaluation"]["patient"] == "keep"


def test_refusals_self_unknown_and_tombstones(admin_client_jwt, pair):
    self_merge = admin_client_jwt.post(merge_url("keep"), {"source": "keep"})
    assert self_merge.status_code == 400 and "source" in self_merge.json()
    assert admin_client_jwt.post(merge_url("keep"), {"source": "nobody"}).status_code == 404
    assert admin_client_jwt.post(merge_url("nobody"), {"source": "dup"}).status_code == 404
    assert admin_client_jwt.post(merge_url("keep"), {}).json() == {"source": ["This field is required."]}

    assert admin_client_jwt.post(merge_url("keep"), {"source": "dup"}).status_code == 201
    again = admin_client_jwt.post(merge_url("keep"), {"source": "dup"})
    assert again.status_code == 409 and "already merged into 'keep'" in again.json()["detail"]
    other = PatientFactory(id="third")
    assert admin_client_jwt.post(merge_url("dup"), {"source": other.pk}).status_code == 409


def test_only_the_admin_role_merges(clinician_client, viewer_client, pair):
    assert clinician_client.post(merge_url("keep"), {"source": "dup"}).status_code == 403
    assert viewer_client.post(merge_url("keep"), {"source": "dup"}).status_code == 403
    assert Patient.objects.get(pk="dup").merged_into_id is None


def test_merged_into_selector_gives_the_pointer_for_fhir(admin_client_jwt, pair):
    from patients.selectors import merged_into

    assert merged_into("dup") is None
    admin_client_jwt.post(merge_url("keep"), {"source": "dup"})
    assert merged_into("dup") == "keep"
    assert merged_into("keep") is None


def test_new_procedures_and_recommendations_cannot_name_a_tombstone(admin_client_jwt, pair):
    admin_client_jwt.post(merge_url("keep"), {"source": "dup"})

    procedure = admin_client_jwt.post(
        "/api/v1/patient-procedures/", {"patient": "dup", "procedure": "hip", "performed_at": "2026-01-02T10:00:00Z"}
    )
    link = admin_client_jwt.post("/api/v1/patient-recommendations/", {"patient": "dup", "recommendation": "diet"})

    for response in (procedure, link):
        assert response.status_code == 400
        assert response.json()["patient"] == ["Patient 'dup' was merged into 'keep'; use that id."]
