"""No input makes the API answer 5xx: every refusal is a JSON 4xx that names the field or the problem.

Runs on SQLite and, in the PostgreSQL pass, on PostgreSQL, where a NUL character that reached a query used to
be a 500 (PostgreSQL refuses NUL in text).
"""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import DisallowedHost, RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.test import override_settings

from clinrec.exceptions import bad_request
from patients.models import Patient
from patients.tests.factories import PatientFactory
from procedures.models import PatientProcedure, Procedure
from procedures.tests.factories import PatientProcedureFactory, ProcedureFactory
from recommendations.models import PatientRecommendation, Recommendation
from recommendations.tests.factories import PatientRecommendationFactory, RecommendationFactory

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/security/token/"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def as_json(payload: dict) -> dict:
    """Request kwargs sending `payload` as JSON text with \\u escapes (a lone surrogate included, as a client can)."""
    return {"data": json.dumps(payload), "content_type": "application/json"}


def assert_json_error(response, status_code: int) -> dict:
    assert response.status_code == status_code, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    return response.json()


# --- Limits on the body ---------------------------------------------------------------------------------------


def test_json_nested_a_thousand_deep_is_a_400_not_a_500_even_unauthenticated(anon_client):
    body = assert_json_error(anon_client.post(TOKEN_URL, nested(1000), content_type="application/json"), 400)
    assert "nested more than 32 levels" in body["detail"]


def test_json_nested_just_past_the_bound_is_refused_on_a_resource(admin_client_jwt):
    payload = {"id": "deep-1", "name": "Deep", "department": "x", "description": json.loads(nested(40))}
    body = assert_json_error(
        admin_client_jwt.post("/api/v1/procedures/", json.dumps(payload), content_type="application/json"), 400
    )
    assert "nested" in body["detail"]
    assert not Procedure.objects.filter(pk="deep-1").exists()


@override_settings(API_JSON_MAX_DEPTH=3)
def test_the_depth_bound_is_a_setting(admin_client_jwt):
    shallow = {"id": "ok-1", "name": "Ok", "department": "ortho"}
    assert admin_client_jwt.post("/api/v1/procedures/", shallow).status_code == 201
    too_deep = {**shallow, "id": "ok-2", "description": [[["x"]]]}
    assert_json_error(admin_client_jwt.post("/api/v1/procedures/", too_deep), 400)


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_a_body_over_the_size_limit_is_a_json_413(admin_client_jwt):
    payload = {"id": "big-1", "name": "Big", "department": "x", "description": "x" * 2000}
    body = assert_json_error(admin_client_jwt.post("/api/v1/procedures/", payload), 413)
    assert "DATA_UPLOAD_MAX_MEMORY_SIZE" in body["detail"]
    assert not Procedure.objects.filter(pk="big-1").exists()


def test_a_ten_megabyte_token_request_is_a_json_413(anon_client):
    response = anon_client.post(TOKEN_URL, "x" * 10_000_000, content_type="application/json")
    assert "larger than" in assert_json_error(response, 413)["detail"]


def test_five_thousand_form_fields_is_a_json_400(anon_client):
    form = "&".join(f"field{n}=1" for n in range(5000))
    response = anon_client.post(TOKEN_URL, form, content_type="application/x-www-form-urlencoded")
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in assert_json_error(response, 400)["detail"]


def test_malformed_json_is_a_json_400(anon_client):
    assert (
        "JSON parse error"
        in assert_json_error(anon_client.post(TOKEN_URL, '{"username": ', content_type="application/json"), 400)[
            "detail"
        ]
    )


def test_a_body_neither_json_nor_form_is_a_json_415(anon_client):
    assert_json_error(anon_client.post(TOKEN_URL, "username=a", content_type="text/plain"), 415)


@pytest.mark.parametrize("path", ["/api/v1/health/", TOKEN_URL, "/api/v1/no-such-thing/"])
def test_a_host_not_served_is_a_json_400_under_api(anon_client, path):
    body = assert_json_error(anon_client.get(path, HTTP_HOST="evil.example"), 400)
    assert "ALLOWED_HOSTS" in body["detail"]


def test_a_host_not_served_outside_api_keeps_django_page(client):
    response = client.get("/admin/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


# --- NUL and control characters in references, ids and text ---------------------------------------------------

NUL_REFERENCES = ["a\u0000", "\u0000", "108\u0000", "a\ud800"]


@pytest.mark.parametrize("bad", NUL_REFERENCES)
@pytest.mark.parametrize("field", ["patient", "procedure"])
def test_nul_in_a_patient_procedure_reference_is_a_400_naming_the_field(clinician_client, field, bad):
    payload = {"patient": PatientFactory().pk, "procedure": ProcedureFactory().pk, "performed_at": "2024-01-01T10:00Z"}
    payload[field] = bad
    body = assert_json_error(clinician_client.post("/api/v1/patient-procedures/", **as_json(payload)), 400)
    assert list(body) == [field]
    assert "FHIR id syntax" in body[field][0]
    assert not PatientProcedure.objects.exists()


@pytest.mark.parametrize("bad", NUL_REFERENCES)
@pytest.mark.parametrize("field", ["patient", "recommendation"])
def test_nul_in_a_patient_recommendation_reference_is_a_400_on_post_and_patch(clinician_client, field, bad):
    link = PatientRecommendationFactory()
    payload = {"patient": PatientFactory().pk, "recommendation": RecommendationFactory().pk, field: bad}
    assert list(
        assert_json_error(clinician_client.post("/api/v1/patient-recommendations/", **as_json(payload)), 400)
    ) == [field]
    patched = clinician_client.patch(f"/api/v1/patient-recommendations/{link.pk}/", **as_json({field: bad}))
    assert list(assert_json_error(patched, 400)) == [field]
    assert PatientRecommendation.objects.count() == 1
    link.refresh_from_db()
    assert getattr(link, f"{field}_id") != bad


def test_patch_of_a_patient_procedure_with_nul_patient_is_a_400(clinician_client):
    history = PatientProcedureFactory()
    response = clinician_client.patch(f"/api/v1/patient-procedures/{history.pk}/", {"patient": "a\u0000"})
    assert list(assert_json_error(response, 400)) == ["patient"]


def test_a_reference_given_as_a_number_still_works(clinician_client):
    PatientFactory(id="108")
    payload = {"patient": 108, "procedure": ProcedureFactory().pk, "performed_at": "2024-01-01T10:00Z"}
    response = clinician_client.post("/api/v1/patient-procedures/", payload)
    assert response.status_code == 201, response.content
    assert response.json()["patient"] == "108"


def test_a_reference_to_an_unknown_id_is_still_does_not_exist(clinician_client):
    payload = {"patient": "nobody", "procedure": ProcedureFactory().pk, "performed_at": "2024-01-01T10:00Z"}
    body = assert_json_error(clinician_client.post("/api/v1/patient-procedures/", payload), 400)
    assert "does not exist" in body["patient"][0]


@pytest.mark.parametrize("bad", ["a\u0000b", "a\u0001b", "a\u007fb", "a\u0085b", "a\u001bb"])
def test_a_patient_id_with_a_control_character_is_refused(clinician_client, bad):
    body = assert_json_error(clinician_client.post("/api/v1/patients/", {"id": bad, "name": "X"}), 400)
    assert list(body) == ["id"]
    assert not Patient.objects.exists()


SINGLE_LINE_FIELDS = [
    ("/api/v1/patients/", {"id": "p-1", "name": "Ada"}, "name"),
    ("/api/v1/procedures/", {"id": "x-1", "name": "Knee", "department": "ortho"}, "name"),
    ("/api/v1/procedures/", {"id": "x-1", "name": "Knee", "department": "ortho"}, "department"),
    ("/api/v1/procedures/", {"id": "x-1", "name": "Knee", "department": "ortho"}, "code"),
    ("/api/v1/recommendations/", {"id": "r-1", "name": "Rehab"}, "name"),
]


@pytest.mark.parametrize("url,payload,field", SINGLE_LINE_FIELDS)
@pytest.mark.parametrize(
    "bad", ["Rehab\r\nBcc: x@evil.example", "Re\nhab", "Re\thab", "a\u0000", "a\u0002", "a\u2028b"]
)
def test_single_line_fields_refuse_line_breaks_and_control_characters(admin_client_jwt, url, payload, field, bad):
    body = assert_json_error(admin_client_jwt.post(url, {**payload, field: bad}), 400)
    assert list(body) == [field]
    assert "not allowed" in body[field][0] or "Null characters" in body[field][0]


def test_a_definition_name_with_crlf_is_refused_on_update_too(admin_client_jwt):
    programme = RecommendationFactory(name="Rehab")
    response = admin_client_jwt.patch(f"/api/v1/recommendations/{programme.pk}/", {"name": "Rehab\r\nBcc: x@y"})
    assert "U+000D (carriage return)" in assert_json_error(response, 400)["name"][0]
    programme.refresh_from_db()
    assert programme.name == "Rehab"


def test_an_email_with_a_header_injection_is_refused(clinician_client):
    body = assert_json_error(
        clinician_client.post("/api/v1/patients/", {"id": "p-1", "name": "Ada", "email": "a@b.org\r\nBcc: c@d.org"}),
        400,
    )
    assert list(body) == ["email"]


FREE_TEXT = [
    ("/api/v1/procedures/", {"id": "x-2", "name": "Knee", "department": "ortho"}, "description", Procedure),
    ("/api/v1/recommendations/", {"id": "r-2", "name": "Rehab"}, "description", Recommendation),
]


@pytest.mark.parametrize("url,payload,field,model", FREE_TEXT)
def test_free_text_keeps_line_breaks_and_tabs(admin_client_jwt, url, payload, field, model):
    text = "Line one\r\nLine two\n\tindented"
    response = admin_client_jwt.post(url, {**payload, field: text})
    assert response.status_code == 201, response.content
    assert getattr(model.objects.get(pk=payload["id"]), field) == text


@pytest.mark.parametrize("url,payload,field,model", FREE_TEXT)
@pytest.mark.parametrize("bad", ["a\u0000b", "bell\u0007", "esc\u001b[31m"])
def test_free_text_refuses_nul_and_other_control_characters(admin_client_jwt, url, payload, field, model, bad):
    body = assert_json_error(admin_client_jwt.post(url, {**payload, field: bad}), 400)
    assert list(body) == [field]
    assert not model.objects.exists() or not model.objects.filter(pk=payload["id"]).exists()


def test_report_and_reason_refuse_control_characters_and_keep_newlines(clinician_client):
    patient, procedure = PatientFactory(), ProcedureFactory()
    base = {"patient": patient.pk, "procedure": procedure.pk, "performed_at": "2024-01-01T10:00Z"}
    assert list(
        assert_json_error(clinician_client.post("/api/v1/patient-procedures/", {**base, "report": "\u0000"}), 400)
    ) == ["report"]
    assert clinician_client.post("/api/v1/patient-procedures/", {**base, "report": "a\nb"}).status_code == 201
    programme = RecommendationFactory()
    link = {"patient": patient.pk, "recommendation": programme.pk}
    response = clinician_client.post("/api/v1/patient-recommendations/", {**link, "reason": "x\u0008"})
    assert list(assert_json_error(response, 400)) == ["reason"]


# --- NUL and control characters in the path and the query string ----------------------------------------------

QUERY_PARAMETERS = [
    ("/api/v1/patient-recommendations/", "patient"),
    ("/api/v1/patient-recommendations/", "recommendation"),
    ("/api/v1/patient-recommendations/", "status"),
    ("/api/v1/patient-recommendations/", "expand"),
    ("/api/v1/patient-procedures/", "patient"),
    ("/api/v1/patient-procedures/", "procedure"),
    ("/api/v1/patients/", "search"),
    ("/api/v1/patients/", "ordering"),
    ("/api/v1/patients/", "limit"),
    ("/api/v1/patients/", "offset"),
    ("/api/v1/patients/", "skip"),
    ("/api/v1/procedures/", "search"),
    ("/api/v1/events/", "patient"),
    ("/api/v1/patients/108/", "expand"),
]


@pytest.mark.parametrize("url,parameter", QUERY_PARAMETERS)
@pytest.mark.parametrize("value", ["a%00", "%00", "a%01b", "%0d%0a"])
def test_a_control_character_in_a_query_parameter_is_a_400_naming_it(admin_client_jwt, url, parameter, value):
    PatientFactory(id="108")
    body = assert_json_error(admin_client_jwt.get(f"{url}?{parameter}={value}"), 400)
    assert list(body) == [parameter]
    assert "Control characters are not allowed" in body[parameter][0]


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
@pytest.mark.parametrize(
    "path", ["/api/v1/patients/a%00b/", "/api/v1/procedures/%00/", "/api/v1/recommendations/x%01/"]
)
def test_a_control_character_in_an_id_in_the_path_is_a_json_404(admin_client_jwt, method, path):
    assert_json_error(getattr(admin_client_jwt, method)(path), 404)


def test_a_clean_query_still_filters(admin_client_jwt):
    PatientRecommendationFactory(patient=PatientFactory(id="108"))
    PatientRecommendationFactory()
    response = admin_client_jwt.get("/api/v1/patient-recommendations/?patient=108")
    assert response.status_code == 200
    assert [row["patient"] for row in response.json()["results"]] == ["108"]


# --- Datetimes in filters ----------------------------------------------------------------------------------------


def test_a_time_zone_offset_postgresql_cannot_take_is_compared_in_utc(admin_client_jwt):
    # Python accepts offsets to ±23:59, PostgreSQL to ±15:59: found by schemathesis as a 500 on PostgreSQL.
    PatientProcedureFactory(performed_at="2024-01-01T10:00:00Z")
    response = admin_client_jwt.get("/api/v1/patient-procedures/?performed_before=2024-01-01T00:00:00-20:21")
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 1  # 2024-01-01T20:21Z is after 10:00Z


def test_an_ordinary_offset_still_filters_by_the_instant(admin_client_jwt):
    PatientProcedureFactory(performed_at="2024-01-01T10:00:00Z")
    after = admin_client_jwt.get("/api/v1/patient-procedures/?performed_after=2024-01-01T11:00:00%2B02:00")
    assert after.json()["count"] == 1  # 09:00Z
    later = admin_client_jwt.get("/api/v1/patient-procedures/?performed_after=2024-01-01T13:00:00%2B02:00")
    assert later.json()["count"] == 0  # 11:00Z


def test_a_datetime_filter_past_the_calendar_in_utc_is_a_400_naming_it(admin_client_jwt):
    response = admin_client_jwt.get("/api/v1/patient-procedures/?performed_after=9999-12-31T23:59:59-23:59")
    assert list(assert_json_error(response, 400)) == ["performed_after"]


# --- Django's 400 handler (requests refused outside DRF) -----------------------------------------------------------


@pytest.mark.parametrize(
    "exception,status_code,names",
    [
        (RequestDataTooBig("too big"), 413, "DATA_UPLOAD_MAX_MEMORY_SIZE"),
        (TooManyFieldsSent("too many"), 400, "DATA_UPLOAD_MAX_NUMBER_FIELDS"),
        (DisallowedHost("evil"), 400, "ALLOWED_HOSTS"),
        (SuspiciousOperation("odd"), 400, "refused"),
    ],
)
def test_the_400_handler_answers_json_under_api_and_tells_413_apart(rf, exception, status_code, names):
    response = bad_request(rf.post("/api/v1/patients/"), exception)
    assert response.status_code == status_code
    assert names in json.loads(response.content)["detail"]


def test_the_400_handler_keeps_django_page_outside_api(rf):
    response = bad_request(rf.post("/admin/login/"), RequestDataTooBig("too big"))
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


# --- Found by schemathesis -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "parameters",
    [
        # Keys with dots made error paths collide ("else" and "else.x"): a TypeError, found by schemathesis.
        {"else": 1, "else.x": 1},
        {"weight_management": {"a": 2, "a.b": 1}},
        {"else": [{}, {"": "x"}]},
        {"weight_management": [1, 2]},
        [],
        "text",
    ],
)
def test_odd_rule_set_parameters_are_a_400_not_a_500(admin_client_jwt, parameters):
    response = admin_client_jwt.post("/api/v1/rule-sets/", {"parameters": parameters, "note": "x"})
    assert_json_error(response, 400)
