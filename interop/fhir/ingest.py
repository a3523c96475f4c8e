"""FHIR in: a `transaction` Bundle of Patient, Observation, Condition and Procedure resources stored whole.

Each entry is validated with its R4B model, read into ClinRec's terms (interop.fhir.reading), checked by the
same serializers as the REST API, and written through the owning app (patients.services for patients, the
procedure serializers for history and catalogue). Any problem is a 422 naming the entry, and nothing of the
Bundle is stored: the whole transaction is one database transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError as PydanticValidationError

from interop.fhir import codes
from interop.fhir.http import FhirError, UnprocessableResource
from interop.fhir.mapping import derived_id
from interop.fhir.reading import (
    UnreadableResource,
    catalogue_procedure,
    chronic_pain_status,
    is_surgical,
    parse_resource,
    performed_at,
    procedure_department,
    procedure_name,
    validation_message,
    vital_sign,
)
from patients import services as patient_services
from patients.models import Patient
from patients.serializers import PatientSerializer
from procedures.models import PatientProcedure, Procedure
from procedures.serializers import PatientProcedureSerializer, ProcedureSerializer

ACCEPTED_TYPES = ("Patient", "Observation", "Condition", "Procedure")
CREATED, OK = "201 Created", "200 OK"


def _entry(index: int) -> str:
    return f"Bundle.entry[{index}]"


def _problem(index: int, message: str) -> UnprocessableResource:
    return UnprocessableResource(f"{_entry(index)}: {message}", expression=[_entry(index)])


def parse_transaction(body: Any) -> list[tuple[Any, Resource]]:
    """The entries of a transaction Bundle as (entry, resource) pairs, each resource valid against its R4B model."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise FhirError("The body must be a FHIR Bundle (resourceType Bundle).", expression=["Bundle"])
    if body.get("type") != "transaction":
        raise FhirError(f"Bundle.type must be 'transaction', got {body.get('type')!r}.", expression=["Bundle.type"])
    raw_entries = body.get("entry") or []
    if not isinstance(raw_entries, list) or not raw_entries:
        raise FhirError("A transaction Bundle needs at least one entry.", expression=["Bundle.entry"])
    for index, raw in enumerate(raw_entries):
        resource = raw.get("resource") if isinstance(raw, dict) else None
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if kind not in ACCEPTED_TYPES:
            raise _problem(index, f"ClinRec accepts {', '.join(ACCEPTED_TYPES)} resources, not {kind!r}.")
        try:
            parse_resource(resource)
        except UnreadableResource as error:
            raise _problem(index, str(error)) from None
    try:
        bundle = Bundle.model_validate(body)
    except PydanticValidationError as error:
        raise FhirError(f"Invalid Bundle: {validation_message(error)}", expression=["Bundle"]) from None
    pairs = []
    for index, entry in enumerate(bundle.entry or []):
        if entry.request is None or entry.request.method not in ("POST", "PUT"):
            raise _problem(index, "each entry needs request.method POST or PUT.")
        pairs.append((entry, entry.resource))
    return pairs


@dataclass
class PatientChanges:
    """What the Bundle says about one patient, and which entry said each thing (for error messages)."""

    data: dict[str, Any] = field(default_factory=dict)
    source: dict[str, int] = field(default_factory=dict)
    has_patient_resource: bool = False

    def set(self, name: str, value: Any, index: int) -> None:
        self.data[name] = value
        self.source[name] = index


def patient_id_of(index: int, entry, resource) -> str:
    url_id = (
        entry.request.url.split("?")[0].rstrip("/").removeprefix("Patient/") if entry.request.method == "PUT" else ""
    )
    patient_id = resource.id or url_id
    if not patient_id:
        raise _problem(index, "a Patient needs its id (the hospital's patient index id), in the resource or PUT url.")
    if url_id and resource.id and url_id != resource.id:
        raise _problem(index, f"PUT {entry.request.url} does not match the resource id {resource.id!r}.")
    return patient_id


def patient_fields(resource) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if resource.name:
        name = resource.name[0]
        data["name"] = name.text or " ".join([*(name.given or []), name.family or ""]).strip()
    if resource.birthDate is not None:
        data["birth_date"] = resource.birthDate
    if resource.gender is not None:
        data["sex"] = resource.gender
    emails = [t.value for t in resource.telecom or [] if t.system == "email" and t.value]
    if emails:
        data["email"] = emails[0]
    return data


class TransactionWriter:
    """Applies one transaction Bundle; `response_entries` says what each entry became."""

    def __init__(self, *, may_extend_catalogue: bool) -> None:
        self.may_extend_catalogue = may_extend_catalogue
        self.full_urls: dict[str, str] = {}
        self.patients: dict[str, PatientChanges] = {}
        self.locations: dict[int, tuple[str, str]] = {}  # entry → (resource type, id) for the response
        self.patient_of_entry: dict[int, str] = {}  # entry of a patient fact → that patient's id

    def subject_of(self, index: int, resource) -> str:
        reference = resource.subject.reference if resource.subject else None
        if not reference:
            raise _problem(index, "subject must reference the Patient.")
        if reference in self.full_urls:
            return self.full_urls[reference]
        if not reference.startswith("Patient/"):
            raise _problem(index, f"subject {reference!r} is neither Patient/<id> nor the fullUrl of a Bundle Patient.")
        patient_id = reference.removeprefix("Patient/")
        if patient_id not in self.patients and not Patient.objects.filter(pk=patient_id).exists():
            raise _problem(index, f"subject {reference} is not known to ClinRec and not in the Bundle.")
        return patient_id

    def apply(self, pairs) -> list[dict[str, Any]]:
        for index, (entry, resource) in enumerate(pairs):
            if resource.get_resource_type() == "Patient":
                patient_id = patient_id_of(index, entry, resource)
                if entry.fullUrl:
                    self.full_urls[entry.fullUrl] = patient_id
                changes = self.patients.setdefault(patient_id, PatientChanges())
                changes.has_patient_resource = True
                for name, value in patient_fields(resource).items():
                    changes.set(name, value, index)
                self.locations[index] = ("Patient", patient_id)
                self.patient_of_entry[index] = patient_id
        for index, (_, resource) in enumerate(pairs):
            kind = resource.get_resource_type()
            if kind == "Observation":
                self.read_observation(index, resource)
            elif kind == "Condition":
                self.read_condition(index, resource)
        statuses = self.save_patients()
        procedure_statuses = {
            index: self.save_procedure(index, resource)
            for index, (_, resource) in enumerate(pairs)
            if resource.get_resource_type() == "Procedure"
        }
        response = []
        for index in range(len(pairs)):
            kind, resource_id = self.locations[index]
            status = procedure_statuses[index] if kind == "Procedure" else statuses[self.patient_of_entry[index]]
            response.append({"response": {"status": status, "location": f"{kind}/{resource_id}"}})
        return response

    def read_observation(self, index: int, resource) -> None:
        patient_id = self.subject_of(index, resource)
        try:
            found = vital_sign(resource)
        except UnreadableResource as error:
            raise _problem(index, str(error)) from None
        if found is None:
            known = ", ".join(f"{s.loinc} {s.display}" for s in codes.VITAL_SIGNS)
            raise _problem(index, f"ClinRec records final Observations of LOINC {known} only.")
        sign, value = found
        self.patients.setdefault(patient_id, PatientChanges()).set(sign.field, value, index)
        self.locations[index] = ("Observation", derived_id(patient_id, sign.id_suffix))
        self.patient_of_entry[index] = patient_id

    def read_condition(self, index: int, resource) -> None:
        patient_id = self.subject_of(index, resource)
        status = chronic_pain_status(resource)
        if status is None:
            raise _problem(index, f"ClinRec records one Condition only: chronic pain (SNOMED CT {codes.CHRONIC_PAIN}).")
        self.patients.setdefault(patient_id, PatientChanges()).set("chronic_pain", status, index)
        self.locations[index] = ("Condition", derived_id(patient_id, "chronic-pain"))
        self.patient_of_entry[index] = patient_id

    def save_patients(self) -> dict[str, str]:
        statuses = {}
        for patient_id, changes in self.patients.items():
            current = Patient.objects.select_for_update().filter(pk=patient_id).first()
            data = {**changes.data} if current is not None else {"id": patient_id, **changes.data}
            serializer = PatientSerializer(current, data=data, partial=current is not None)
            if not serializer.is_valid():
                name, messages = next(iter(serializer.errors.items()))
                index = changes.source.get(name, next(iter(changes.source.values()), 0))
                raise _problem(index, f"Patient/{patient_id} {name}: {' '.join(str(m) for m in messages)}")
            if current is None:
                patient_services.create_patient(data=serializer.validated_data)
                statuses[patient_id] = CREATED
            else:
                patient_services.update_patient(patient=current, data=serializer.validated_data)
                statuses[patient_id] = OK
        return statuses

    def catalogue_entry(self, index: int, resource) -> Procedure:
        known = catalogue_procedure(resource)
        if known is not None:
            return known
        ids = [i.value for i in resource.identifier or [] if codes.is_clinrec_system(i.system, "procedure") and i.value]
        how = (
            f"give an identifier with system {codes.clinrec_system('procedure')} (the new catalogue id), code.text "
            "(its name) and performer.actor.display (its department)"
        )
        name, department = procedure_name(resource), procedure_department(resource)
        if not (ids and name and department):
            raise _problem(
                index, f"the Procedure matches no catalogue entry by identifier or SNOMED CT code; to add it, {how}."
            )
        if not self.may_extend_catalogue:
            raise _problem(index, f"Procedure {ids[0]!r} is not in the catalogue, and your role may not add to it.")
        snomed = [c.code for c in resource.code.coding or [] if c.system == codes.SNOMED and c.code]
        serializer = ProcedureSerializer(
            data={
                "id": ids[0],
                "name": name,
                "department": department,
                "is_surgery": is_surgical(resource),
                "code": snomed[0] if snomed else "",
            }
        )
        if not serializer.is_valid():
            raise _problem(index, f"cannot add Procedure {ids[0]!r} to the catalogue: {serializer.errors}")
        return serializer.save()

    def save_procedure(self, index: int, resource) -> str:
        patient_id = self.subject_of(index, resource)
        if resource.status != "completed":
            raise _problem(index, f"ClinRec records completed procedures only, not status {resource.status!r}.")
        try:
            when = performed_at(resource)
        except UnreadableResource as error:
            raise _problem(index, str(error)) from None
        procedure = self.catalogue_entry(index, resource)
        report = "\n".join(note.text for note in resource.note or [] if note.text)
        existing = PatientProcedure.objects.filter(
            patient_id=patient_id, procedure=procedure, performed_at=when
        ).first()
        serializer = PatientProcedureSerializer(
            existing,
            data={"patient": patient_id, "procedure": procedure.pk, "performed_at": when, "report": report},
        )
        if not serializer.is_valid():
            raise _problem(index, f"Procedure: {serializer.errors}")
        saved = serializer.save()
        self.locations[index] = ("Procedure", str(saved.pk))
        return OK if existing is not None else CREATED


@transaction.atomic
def apply_transaction(*, body: Any, may_extend_catalogue: bool) -> Bundle:
    """Store a transaction Bundle whole and answer its `transaction-response` Bundle; FhirError on any problem."""
    pairs = parse_transaction(body)
    entries = TransactionWriter(may_extend_catalogue=may_extend_catalogue).apply(pairs)
    return Bundle(type="transaction-response", entry=entries)
