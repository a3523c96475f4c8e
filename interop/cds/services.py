"""What the CDS services do: read the EHR's prefetch (or ClinRec's records), run the engine, issue cards; feedback.

A hook call is advice: it runs the engine on a snapshot and records no recommendation. It remembers the cards
it issued (`IssuedCard`), so that the EHR's feedback can refer to them; an accepted card records the
recommendation for a stored patient (source `cds`) through the same service as every other, event included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.resource import Resource
from rest_framework import exceptions, status

from interop.cds.hooks import PREFETCH, CdsService
from interop.fhir import codes, reading
from interop.fhir.mapping import as_json, proposed_service_request
from interop.fhir.reading import UnreadableResource, snapshot_from_resources
from interop.models import CdsFeedback, FeedbackOutcome, IssuedCard
from patients.models import Patient
from recommendations.engine import Finding, PatientSnapshot
from recommendations.models import PatientRecommendation, Recommendation, RecommendationSource, RecommendationStatus
from recommendations.selectors import patient_snapshot
from recommendations.services import get_engine
from recommendations.services.provenance import record_manual_recommendation

SUMMARY_LIMIT = 139  # CDS Hooks: summary SHOULD be under 140 characters


class PrefetchUnavailable(exceptions.APIException):
    """412: neither a usable prefetch nor a stored patient to evaluate (CDS Hooks lets a service answer 412)."""

    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_code = "prefetch_unavailable"


def parse_resource(value: Any, *, where: str) -> Resource:
    """A FHIR JSON object parsed with its R4B model; a 400 naming `where` when it is not valid FHIR."""
    try:
        return reading.parse_resource(value)
    except UnreadableResource as error:
        raise exceptions.ValidationError({where: str(error)}) from None


def prefetched_resources(prefetch: dict[str, Any], *, patient_id: str) -> tuple[FhirPatient, list[Resource]] | None:
    """The Patient and the other resources of a complete prefetch; None when a key ClinRec asks for is missing.

    A key present with `null` means the EHR found nothing of that kind. Every value is checked: the right
    resource type (a Patient, or a Bundle of the asked type), valid R4B, and about `context.patientId`.
    """
    unknown = sorted(set(prefetch) - PREFETCH.keys())
    if unknown:
        raise exceptions.ValidationError({f"prefetch.{key}": "Not a prefetch key of this service." for key in unknown})
    if set(PREFETCH) - prefetch.keys():
        return None
    if prefetch["patient"] is None:
        return None
    patient = parse_resource(prefetch["patient"], where="prefetch.patient")
    if patient.get_resource_type() != "Patient":
        raise exceptions.ValidationError(
            {"prefetch.patient": f"Must be a Patient, got a {patient.get_resource_type()}."}
        )
    if patient.id != patient_id:
        raise exceptions.ValidationError(
            {"prefetch.patient": f"Is Patient {patient.id!r}, but context.patientId is {patient_id!r}."}
        )
    resources: list[Resource] = []
    for key, (_, expected) in PREFETCH.items():
        if key == "patient" or prefetch[key] is None:
            continue
        bundle = parse_resource(prefetch[key], where=f"prefetch.{key}")
        if bundle.get_resource_type() != "Bundle":
            raise exceptions.ValidationError(
                {f"prefetch.{key}": f"Must be a Bundle of {expected}, got a {bundle.get_resource_type()}."}
            )
        for index, entry in enumerate(bundle.entry or []):
            resource = entry.resource
            if resource is None:
                continue
            where = f"prefetch.{key}.entry[{index}]"
            if resource.get_resource_type() == "OperationOutcome":
                continue  # a search's warnings ride along in the Bundle
            if resource.get_resource_type() != expected:
                raise exceptions.ValidationError(
                    {where: f"Must be a {expected}, got a {resource.get_resource_type()}."}
                )
            subject = getattr(resource, "subject", None)
            if subject is not None and subject.reference not in (None, f"Patient/{patient_id}"):
                raise exceptions.ValidationError({where: f"Is about {subject.reference}, not Patient/{patient_id}."})
            resources.append(resource)
    return patient, resources


def snapshot_for_request(*, patient_id: str, prefetch: dict[str, Any] | None) -> PatientSnapshot:
    """The snapshot to evaluate: the EHR's prefetch when complete, else ClinRec's stored patient, else 412."""
    if prefetch:
        found = prefetched_resources(prefetch, patient_id=patient_id)
        if found is not None:
            try:
                return snapshot_from_resources(*found)
            except UnreadableResource as error:
                raise exceptions.ValidationError({"prefetch": str(error)}) from None
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None:
        asked = ", ".join(PREFETCH)
        raise PrefetchUnavailable(
            f"Patient {patient_id!r} is unknown to ClinRec and the request has no complete prefetch ({asked})."
        )
    return patient_snapshot(patient=patient)


@dataclass(frozen=True)
class CardFinding:
    finding: Finding
    definition: Recommendation
    active_since: datetime | None


def evaluate(*, patient_id: str, snapshot: PatientSnapshot, at: datetime) -> list[CardFinding]:
    """The engine's findings with their definitions (a rule without one is off, as in evaluation); reads only."""
    findings = get_engine().evaluate(snapshot, at=at)
    definitions = {d.rule: d for d in Recommendation.objects.filter(rule__in={f.rule for f in findings})}
    active = dict(
        PatientRecommendation.objects.filter(
            patient_id=patient_id,
            status=RecommendationStatus.ACTIVE,
            recommendation__in=[d.pk for d in definitions.values()],
        )
        .order_by("recommended_at")
        .values_list("recommendation_id", "recommended_at")
    )
    return [
        CardFinding(finding, definitions[finding.rule], active.get(definitions[finding.rule].pk))
        for finding in findings
        if finding.rule in definitions
    ]


def card_summary(definition: Recommendation) -> str:
    summary = f"ClinRec recommends {definition.name}"
    return summary if len(summary) <= SUMMARY_LIMIT else f"{summary[: SUMMARY_LIMIT - 1]}…"


def card_detail(item: CardFinding) -> str:
    lines = [f"**{item.definition.name}**"]
    if item.definition.description:
        lines.append(item.definition.description)
    lines.append(f"**Why:** {item.finding.reason}.")
    if item.active_since is not None:
        lines.append(f"_Already recorded as active since {item.active_since:%Y-%m-%d}._")
    return "\n\n".join(lines)


def card_json(card: IssuedCard, item: CardFinding, *, at: datetime) -> dict[str, Any]:
    definition = item.definition
    request = proposed_service_request(
        patient_id=card.patient_id, definition=definition, reason=item.finding.reason, at=at
    )
    return {
        "uuid": str(card.uuid),
        "summary": card_summary(definition),
        "detail": card_detail(item),
        "indicator": "warning" if item.finding.rule in settings.CDS_WARNING_RULES else "info",
        "source": {
            "label": "ClinRec",
            "topic": {
                "system": codes.clinrec_system("recommendation"),
                "code": definition.pk,
                "display": definition.name,
            },
        },
        "suggestions": [
            {
                "label": f"Propose {definition.name}",
                "uuid": str(card.suggestion_uuid),
                "isRecommended": True,
                "actions": [
                    {
                        "type": "create",
                        "description": f"Propose {definition.name} for the patient.",
                        "resource": as_json(request),
                    }
                ],
            }
        ],
        "selectionBehavior": "any",
    }


@transaction.atomic
def issue_cards(
    *,
    service: CdsService,
    hook_instance: str,
    patient_id: str,
    prefetch: dict[str, Any] | None,
    at: datetime | None = None,
) -> list[dict[str, Any]]:
    """Evaluate the patient for a hook call and return its cards, remembering each; records no recommendation."""
    at = at or timezone.now()
    snapshot = snapshot_for_request(patient_id=patient_id, prefetch=prefetch)
    items = evaluate(patient_id=patient_id, snapshot=snapshot, at=at)
    issued = IssuedCard.objects.bulk_create(
        IssuedCard(
            service=service.id,
            hook_instance=hook_instance,
            patient_id=patient_id,
            recommendation=item.definition,
            rule=item.finding.rule,
            reason=item.finding.reason,
            issued_at=at,
        )
        for item in items
    )
    return [card_json(card, item, at=at) for card, item in zip(issued, items, strict=True)]


def override_reason_text(reason: dict[str, Any] | None) -> str:
    if not reason:
        return ""
    coding = reason.get("reason") or {}
    return (coding.get("display") or coding.get("code") or reason.get("userComment") or "")[:255]


@transaction.atomic
def record_feedback(
    *, service: CdsService, items: Iterable[dict[str, Any]], recorded_by: Any = None
) -> list[CdsFeedback]:
    """Keep the EHR's feedback on cards; an accepted card records its recommendation (source `cds`) once.

    All or nothing: every item is checked (a card this service issued, suggestions of that card) before any
    is stored. An accepted card for a patient ClinRec does not store is kept as feedback only.
    """
    items = list(items)
    cards = {card.uuid: card for card in IssuedCard.objects.filter(uuid__in=[i["card"] for i in items])}
    cards = {uuid: card for uuid, card in cards.items() if card.service == service.id}
    for index, item in enumerate(items):
        card = cards.get(item["card"])
        if card is None:
            raise exceptions.ValidationError(
                {f"feedback[{index}].card": f"{item['card']} is not a card the {service.id} service issued."}
            )
        for suggestion in item.get("acceptedSuggestions", []):
            if suggestion["id"] != card.suggestion_uuid:
                problem = f"{suggestion['id']} is not a suggestion of card {card.uuid}."
                raise exceptions.ValidationError({f"feedback[{index}].acceptedSuggestions": problem})
    stored = []
    for item in items:
        card = cards[item["card"]]
        link = None
        if item["outcome"] == FeedbackOutcome.ACCEPTED:
            link = _accept(card, at=item["outcomeTimestamp"], recorded_by=recorded_by)
        stored.append(
            CdsFeedback.objects.create(
                card=card,
                outcome=item["outcome"],
                outcome_timestamp=item["outcomeTimestamp"],
                accepted_suggestions=[str(s["id"]) for s in item.get("acceptedSuggestions", [])],
                override_reason=item.get("overrideReason"),
                override_reason_text=override_reason_text(item.get("overrideReason")),
                patient_recommendation=link,
            )
        )
    return stored


def _accept(card: IssuedCard, *, at: datetime, recorded_by: Any) -> PatientRecommendation | None:
    """The recommendation an accepted card stands for: the active one, or a new one with its event."""
    patient = Patient.objects.select_for_update().filter(pk=card.patient_id).first()
    if patient is None:
        return None
    active = PatientRecommendation.objects.filter(
        patient=patient, recommendation_id=card.recommendation_id, status=RecommendationStatus.ACTIVE
    ).first()
    if active is not None:
        return active
    # Provenance says who accepted the card (the EHR's issuer or the ClinRec user) and that it came through CDS.
    link, _event = record_manual_recommendation(
        patient=patient,
        recommendation=card.recommendation,
        recorded_by=recorded_by,
        via="cds",
        source=RecommendationSource.CDS,
        reason=card.reason,
        at=at,
    )
    return link
