"""FHIR search: the parameters each search accepts, `_count`/`_offset` paging, and the searchset it answers."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import QuerySet
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.resource import Resource

from clinrec.identifiers import FHIR_ID_PATTERN
from interop.fhir.http import FhirError
from interop.fhir.mapping import searchset

FHIR_ID = re.compile(FHIR_ID_PATTERN)
PAGING_PARAMETERS = {"_count", "_offset", "_format"}


@dataclass(frozen=True)
class Page:
    count: int
    offset: int


def check_parameters(params, allowed: set[str]) -> None:
    """Refuse an unknown search parameter (400 naming it) rather than silently ignoring a filter."""
    unknown = sorted(set(params) - allowed - PAGING_PARAMETERS)
    if unknown:
        supported = ", ".join(sorted(allowed | PAGING_PARAMETERS))
        raise FhirError(
            f"Unknown search parameter(s): {', '.join(unknown)}; supported: {supported}.",
            expression=unknown,
        )


def _whole(params, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise FhirError(f"{name} must be a whole number, got {raw!r}.", expression=[name]) from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise FhirError(f"{name} must be {bound}, got {value}.", expression=[name])
    return value


def page_of(params) -> Page:
    return Page(
        count=_whole(params, "_count", settings.FHIR_PAGE_SIZE, minimum=1, maximum=settings.FHIR_MAX_PAGE_SIZE),
        offset=_whole(params, "_offset", 0, minimum=0),
    )


def patient_parameter(params) -> str:
    """The required `patient` parameter, as an id (`108` or `Patient/108`)."""
    raw = params.get("patient", "").strip()
    if not raw:
        raise FhirError(
            "The patient parameter is required (patient=<id> or patient=Patient/<id>).", expression=["patient"]
        )
    patient_id = raw.removeprefix("Patient/")
    if not FHIR_ID.match(patient_id):
        raise FhirError(f"patient must be a FHIR id (1-64 of A-Z a-z 0-9 - .), got {raw!r}.", expression=["patient"])
    return patient_id


def paged_searchset(
    request, items: QuerySet | Sequence, to_resource: Callable[[object], Resource], *, base_url: str
) -> Bundle:
    """One page of `items` as a searchset Bundle, with `self` and (when more remain) `next` links."""
    page = page_of(request.query_params)
    total = items.count() if isinstance(items, QuerySet) else len(items)
    window = list(items[page.offset : page.offset + page.count])
    params = {key: value for key, value in request.query_params.items() if key not in {"_offset", "_count"}}
    path = request.build_absolute_uri(request.path)

    def url_at(offset: int) -> str:
        return f"{path}?{urlencode({**params, '_count': page.count, '_offset': offset})}"

    next_url = url_at(page.offset + page.count) if page.offset + page.count < total else None
    return searchset(
        (to_resource(item) for item in window),
        total=total,
        self_url=url_at(page.offset),
        next_url=next_url,
        base_url=base_url,
    )
