"""The README's CDS Hooks curl calls work as shown (the examples integrators copy must not rot)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from django.conf import settings

README = Path(settings.BASE_DIR) / "README.md"
CDS_CALL = re.compile(r"curl -s -X POST http://127\.0\.0\.1:8000(/cds-services/[\w-]+) .*?-d '(\{.*?\})'", re.S)


def readme_cds_calls() -> list[tuple[str, dict]]:
    return [(path, json.loads(body)) for path, body in CDS_CALL.findall(README.read_text())]


def test_the_readme_cds_hooks_calls_answer_the_cards_it_shows(seeded, viewer_client):
    calls = readme_cds_calls()
    assert len(calls) == 2
    stored, stranger = (viewer_client.post(path, body, format="json") for path, body in calls)
    assert stored.status_code == 200
    assert {c["source"]["topic"]["code"] for c in stored.json()["cards"]} == {"physical-therapy", "post-op-rehab"}
    assert stranger.status_code == 200
    assert [c["summary"] for c in stranger.json()["cards"]] == ["ClinRec recommends Weight Management Program"]
