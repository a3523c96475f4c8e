"""Pagination of every list: `limit`/`offset` (or `skip`), 50 by default, 500 at most, DRF's envelope, 400s."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from patients.models import Patient
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

PATIENTS = "/api/v1/patients/"


def make_patients(count: int) -> list[str]:
    """`count` patients with ids p-0000…, inserted in one statement (the factory would take seconds for 600)."""
    ids = [f"p-{n:04d}" for n in range(count)]
    Patient.objects.bulk_create([PatientFactory.build(id=patient_id) for patient_id in ids])
    return ids


def query_of(url: str | None) -> dict[str, list[str]]:
    assert url is not None
    return parse_qs(urlparse(url).query)


def test_list_uses_drf_envelope_and_default_page_of_50(viewer_client):
    ids = make_patients(120)

    response = viewer_client.get(PATIENTS)

    assert response.status_code == 200
    assert set(response.data) == {"count", "next", "previous", "results"}
    assert response.data["count"] == 120
    assert [row["id"] for row in response.data["results"]] == ids[:50]
    assert response.data["previous"] is None
    assert query_of(response.data["next"]) == {"limit": ["50"], "offset": ["50"]}


def test_empty_list_has_an_empty_envelope(viewer_client):
    response = viewer_client.get(PATIENTS)

    assert response.data == {"count": 0, "next": None, "previous": None, "results": []}


def test_limit_sets_the_page_size(viewer_client):
    ids = make_patients(30)

    response = viewer_client.get(PATIENTS, {"limit": 7})

    assert [row["id"] for row in response.data["results"]] == ids[:7]
    assert query_of(response.data["next"]) == {"limit": ["7"], "offset": ["7"]}


def test_limit_above_500_is_capped_at_500(viewer_client):
    make_patients(501)

    response = viewer_client.get(PATIENTS, {"limit": 10_000})

    assert response.status_code == 200
    assert response.data["count"] == 501
    assert len(response.data["results"]) == 500
    assert query_of(response.data["next"]) == {"limit": ["500"], "offset": ["500"]}


def test_limit_of_exactly_500_is_honoured(viewer_client):
    make_patients(501)

    response = viewer_client.get(PATIENTS, {"limit": 500})

    assert len(response.data["results"]) == 500


def test_offset_skips_rows(viewer_client):
    ids = make_patients(12)

    response = viewer_client.get(PATIENTS, {"limit": 5, "offset": 5})

    assert [row["id"] for row in response.data["results"]] == ids[5:10]
    assert query_of(response.data["next"]) == {"limit": ["5"], "offset": ["10"]}
    assert query_of(response.data["previous"]) == {"limit": ["5"]}


def test_last_page_has_no_next_link(viewer_client):
    ids = make_patients(12)

    response = viewer_client.get(PATIENTS, {"limit": 5, "offset": 10})

    assert [row["id"] for row in response.data["results"]] == ids[10:]
    assert response.data["next"] is None
    assert query_of(response.data["previous"]) == {"limit": ["5"], "offset": ["5"]}


def test_offset_past_the_end_is_an_empty_page(viewer_client):
    make_patients(3)

    response = viewer_client.get(PATIENTS, {"offset": 10})

    assert response.status_code == 200
    assert response.data["count"] == 3
    assert response.data["results"] == []


def test_skip_is_a_synonym_of_offset(viewer_client):
    ids = make_patients(12)

    by_skip = viewer_client.get(PATIENTS, {"limit": 5, "skip": 5})
    by_offset = viewer_client.get(PATIENTS, {"limit": 5, "offset": 5})

    assert [row["id"] for row in by_skip.data["results"]] == ids[5:10]
    assert by_skip.data["results"] == by_offset.data["results"]


def test_offset_wins_over_skip_when_both_are_given(viewer_client):
    ids = make_patients(12)

    response = viewer_client.get(PATIENTS, {"limit": 2, "offset": 4, "skip": 8})

    assert [row["id"] for row in response.data["results"]] == ids[4:6]


def test_links_of_a_skip_page_lead_to_the_neighbouring_pages(viewer_client):
    # A `skip` left in a link would move it: the link to the first page drops `offset`, so `skip` would win.
    ids = make_patients(15)

    page = viewer_client.get(PATIENTS, {"limit": 5, "skip": 5})
    previous = viewer_client.get(page.data["previous"])
    following = viewer_client.get(page.data["next"])

    assert [row["id"] for row in previous.data["results"]] == ids[:5]
    assert [row["id"] for row in following.data["results"]] == ids[10:]


def test_links_keep_the_other_query_parameters(viewer_client):
    PatientFactory.create_batch(3, name="Hamilton")
    PatientFactory(name="Turing")

    response = viewer_client.get(PATIENTS, {"search": "hamilton", "limit": 1, "offset": 1})

    assert response.data["count"] == 3
    assert query_of(response.data["next"]) == {"search": ["hamilton"], "limit": ["1"], "offset": ["2"]}
    assert query_of(response.data["previous"]) == {"search": ["hamilton"], "limit": ["1"]}


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("limit", "abc"),
        ("limit", "-1"),
        ("limit", "0"),
        ("limit", "1.5"),
        ("offset", "abc"),
        ("offset", "-1"),
        ("skip", "abc"),
        ("skip", "-5"),
    ],
)
def test_malformed_pagination_parameter_is_400_naming_it(viewer_client, parameter, value):
    make_patients(3)

    response = viewer_client.get(PATIENTS, {parameter: value})

    assert response.status_code == 400
    assert parameter in response.data


def test_empty_pagination_parameters_mean_the_defaults(viewer_client):
    make_patients(60)

    response = viewer_client.get(PATIENTS, {"limit": "", "offset": ""})

    assert response.status_code == 200
    assert len(response.data["results"]) == 50


def test_every_list_is_paginated_the_same_way(viewer_client):
    response = viewer_client.get("/api/v1/patient-procedures/", {"limit": "0"})
    assert response.status_code == 400
    assert "limit" in response.data

    response = viewer_client.get("/api/v1/procedures/", {"skip": "-1"})
    assert response.status_code == 400
    assert "skip" in response.data


def test_page_links_of_the_browsable_api_on_a_skip_page_do_not_keep_skip(viewer_client):
    make_patients(15)

    response = viewer_client.get(PATIENTS, {"limit": 5, "skip": 5}, HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="http://testserver/api/v1/patients/?limit=5"' in html  # page 1
    assert "skip=" not in html.split('class="pagination"', 1)[1].split("</ul>", 1)[0]
