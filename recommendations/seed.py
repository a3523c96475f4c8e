"""The mock hospital of `manage.py seed_db`: patients, the procedure catalogue, histories and definitions.

Every date is computed from the day it runs, so the clinical facts stay true whenever it is run again (which
also moves the dates forward). Running it twice creates nothing twice: records are keyed by their ids, and a
history entry by its patient and procedure.

What evaluation gives after seeding (default thresholds):

| patient | why | recommendations |
|---|---|---|
| 108 | 78, chronic pain; knee replacement 45 days ago | Physical Therapy, Post-Op Rehabilitation Plan |
| 105 | BMI 34.6 | Weight Management Program |
| 102 | ACL reconstruction 20 days ago | Post-Op Rehabilitation Plan |
| 107 | 66, chronic pain | Physical Therapy |
| 114 | BMI 30.1 | Weight Management Program |
| 115 | 82, chronic pain, BMI 31.5 | Physical Therapy, Weight Management Program |
| 120 | 68, chronic pain, BMI 29.9 | Physical Therapy |
| 122 | BMI 35.2 | Weight Management Program |
| 106 | exactly 65 with chronic pain | nothing |
| 109 | BMI exactly 30.0 | nothing |
| 110 | cardiac surgery 15 days ago (not orthopaedics) | nothing |
| 111 | hip replacement 120 days ago (outside the 90-day window) | nothing |
| 112 | orthopaedic surgery 91 days ago (just outside the window) | nothing |
| 113 | orthopaedic consultation 5 days ago (not a surgery) | nothing |
| others | healthy, missing data, or outside every rule | nothing |
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.utils import timezone

from clinrec.cache import bump_versions
from patients.models import Patient
from patients.services import compute_bmi
from procedures.models import PatientProcedure, Procedure
from recommendations.definitions import STANDARD_DEFINITIONS
from recommendations.models import Recommendation

PROCEDURES = [
    # id, name, department, is_surgery, SNOMED CT code, description
    ("ortho-tkr", "Total knee replacement", "orthopaedics", True, "609588000", "Knee arthroplasty."),
    ("ortho-thr", "Total hip replacement", "orthopaedics", True, "52734007", "Hip arthroplasty."),
    ("ortho-acl", "ACL reconstruction", "orthopaedics", True, "307638000", "Anterior cruciate ligament repair."),
    ("ortho-consult", "Orthopaedic consultation", "orthopaedics", False, "", "Outpatient review, no surgery."),
    ("card-cabg", "Coronary artery bypass graft", "cardiology", True, "232717009", "Open-heart surgery."),
    ("card-ecg", "Electrocardiogram", "cardiology", False, "29303009", "Resting 12-lead ECG."),
    ("gen-appx", "Appendectomy", "general-surgery", True, "80146002", "Laparoscopic appendectomy."),
    ("neuro-lam", "Lumbar laminectomy", "neurosurgery", True, "387731002", "Spinal decompression."),
    ("rad-mri-knee", "MRI of knee", "radiology", False, "241682004", "Magnetic resonance imaging."),
    ("endo-hba1c", "HbA1c test", "endocrinology", False, "43396009", "Glycated haemoglobin."),
    ("obs-cs", "Caesarean section", "obstetrics", True, "11466000", "Lower segment caesarean section."),
    ("oph-cat", "Cataract extraction", "ophthalmology", True, "54885007", "Phacoemulsification with lens."),
]

EXTRA_DEFINITIONS = [
    ("por-123", "Fall Prevention Programme", "Balance training and home assessment for patients at risk of falls."),
    ("smoking-cessation", "Smoking Cessation Support", "Counselling and nicotine replacement therapy."),
    ("diabetes-education", "Diabetes Education", "Structured education for people with type 2 diabetes."),
]


@dataclass(frozen=True)
class SeedPatient:
    id: str
    name: str
    sex: str
    age: int | None  # whole years today; None: birth date unknown
    height_cm: float | None = None
    weight_kg: float | None = None
    bmi: float | None = None  # given explicitly (a boundary value); otherwise computed
    chronic_pain: bool = False
    email: str = ""
    birthday_days_ago: int = 30  # the last birthday was this many days ago, so `age` holds for a while
    history: tuple[tuple[str, int, str], ...] = ()  # (procedure id, days ago, report)


PATIENTS = [
    SeedPatient("101", "Amelia Hart", "female", 34, 165, 60),
    SeedPatient("102", "Benjamin Cole", "male", 45, 178, 77.6, history=(("ortho-acl", 20, "ACL graft, stable knee."),)),
    SeedPatient("103", "Clara Jensen", "female", 70, 160, 66.5),
    SeedPatient("104", "Daniel Okafor", "male", 40, 182, 89, chronic_pain=True),
    SeedPatient(
        "105",
        "Elena Rossi",
        "female",
        52,
        165,
        94.2,
        email="elena.rossi@example.org",
        history=(("card-ecg", 30, "Sinus rhythm."),),
    ),
    SeedPatient("106", "Farid Haddad", "male", 65, 175, 76.6, chronic_pain=True),
    SeedPatient("107", "Grace Liu", "female", 66, 158, 69.9, chronic_pain=True),
    SeedPatient(
        "108",
        "Henry Walsh",
        "male",
        78,
        172,
        80.2,
        chronic_pain=True,
        email="henry.walsh@example.org",
        history=(
            ("rad-mri-knee", 80, "Severe medial compartment osteoarthritis."),
            ("ortho-tkr", 45, "Right total knee replacement, no complications."),
        ),
    ),
    SeedPatient("109", "Ingrid Svensson", "female", 48, 170, 86.7, bmi=30.0),
    SeedPatient(
        "110", "Jamal Carter", "male", 60, 180, 84, history=(("card-cabg", 15, "Triple bypass, good recovery."),)
    ),
    SeedPatient("111", "Keiko Tanaka", "female", 58, 155, 58, history=(("ortho-thr", 120, "Left hip replacement."),)),
    SeedPatient("112", "Lucas Moreau", "male", 50, 176, 74, history=(("ortho-tkr", 91, "Left knee replacement."),)),
    SeedPatient("113", "Maya Patel", "female", 39, 163, 59, history=(("ortho-consult", 5, "Patellofemoral pain."),)),
    SeedPatient("114", "Noah Fischer", "male", 44, 180, 97.5, bmi=30.1),
    SeedPatient("115", "Olga Petrova", "female", 82, 160, 80.6, chronic_pain=True),
    SeedPatient("116", "Pablo Ortega", "male", 57, 174, 78, history=(("neuro-lam", 30, "L4-L5 decompression."),)),
    SeedPatient("117", "Quinn Murphy", "other", None, 168, 65, chronic_pain=True),
    SeedPatient("118", "Rosa Delgado", "female", 50),
    SeedPatient("119", "Sara Novak", "female", 29, 168, 70, history=(("obs-cs", 40, "Healthy baby girl."),)),
    SeedPatient("120", "Thomas Becker", "male", 68, 181, 97.9, bmi=29.9, chronic_pain=True),
    SeedPatient(
        "121",
        "Uma Raman",
        "female",
        55,
        162,
        62,
        history=(("ortho-tkr", 200, "Right knee replacement."), ("ortho-consult", 10, "Good range of motion.")),
    ),
    SeedPatient("122", "Victor Almeida", "male", 61, 170, 101.7, history=(("endo-hba1c", 14, "HbA1c 7.9%."),)),
    SeedPatient("123", "Wen Zhou", "unknown", 73, 158, 55, history=(("oph-cat", 25, "Right eye, uneventful."),)),
    SeedPatient("124", "Yusuf Demir", "male", 36, 185, 82, history=(("gen-appx", 3, "Discharged day 2."),)),
]


def birth_date_for(*, age: int, birthday_days_ago: int, today: date) -> date:
    """A birth date that makes the patient exactly `age` today, the last birthday `birthday_days_ago` days ago."""
    last_birthday = today - timedelta(days=birthday_days_ago)
    year = last_birthday.year - age
    try:
        return last_birthday.replace(year=year)
    except ValueError:  # Feb 29 in a year without one
        return last_birthday.replace(year=year, day=28)


@dataclass(frozen=True)
class SeedReport:
    patients: int
    procedures: int
    histories: int
    definitions: int


@transaction.atomic
def seed_mock_hospital(*, today: date | None = None) -> SeedReport:
    """Create or refresh the mock hospital; safe to run any number of times."""
    today = today or timezone.localdate()
    now = timezone.now()
    for pk, rule, name, description in STANDARD_DEFINITIONS:
        if Recommendation.objects.filter(rule=rule).exclude(pk=pk).exists():
            continue  # the hospital has its own definition for this rule (rules are unique): keep it
        Recommendation.objects.update_or_create(
            pk=pk, defaults={"rule": rule, "name": name, "description": description}
        )
    for pk, name, description in EXTRA_DEFINITIONS:
        Recommendation.objects.update_or_create(pk=pk, defaults={"name": name, "description": description})
    for pk, name, department, is_surgery, code, description in PROCEDURES:
        Procedure.objects.update_or_create(
            pk=pk,
            defaults={
                "name": name,
                "department": department,
                "is_surgery": is_surgery,
                "code": code,
                "description": description,
            },
        )
    histories = 0
    for seed in PATIENTS:
        birth_date = (
            birth_date_for(age=seed.age, birthday_days_ago=seed.birthday_days_ago, today=today)
            if seed.age is not None
            else None
        )
        bmi = seed.bmi if seed.bmi is not None else compute_bmi(height_cm=seed.height_cm, weight_kg=seed.weight_kg)
        patient, _ = Patient.objects.update_or_create(
            pk=seed.id,
            defaults={
                "name": seed.name,
                "sex": seed.sex,
                "birth_date": birth_date,
                "height_cm": seed.height_cm,
                "weight_kg": seed.weight_kg,
                "bmi": bmi,
                "chronic_pain": seed.chronic_pain,
                "email": seed.email,
            },
        )
        for procedure_id, days_ago, report in seed.history:
            performed_at = timezone.make_aware(datetime.combine(today - timedelta(days=days_ago), time(10, 0)))
            performed_at = min(performed_at, now)
            entry = PatientProcedure.objects.filter(patient=patient, procedure_id=procedure_id).first()
            if entry is None:
                PatientProcedure.objects.create(
                    patient=patient, procedure_id=procedure_id, performed_at=performed_at, report=report
                )
            else:
                entry.performed_at, entry.report = performed_at, report
                entry.save(update_fields=["performed_at", "report"])
            histories += 1
    bump_versions(Patient, Procedure, PatientProcedure, Recommendation)
    return SeedReport(
        patients=len(PATIENTS),
        procedures=len(PROCEDURES),
        histories=histories,
        definitions=len(STANDARD_DEFINITIONS) + len(EXTRA_DEFINITIONS),
    )


# --- a hospital of any size ----------------------------------------------------------------------------------

SYNTHETIC_BATCH = 5000
_FIRST_NAMES = ("Ada", "Bram", "Chen", "Dora", "Emil", "Fatma", "Gus", "Hana", "Ivo", "Jana", "Kofi", "Lena")
_LAST_NAMES = ("Adler", "Banda", "Costa", "Dahl", "Evans", "Ferro", "Gupta", "Horn", "Ito", "Jones", "Kaya", "Lund")


def synthetic_patient_id(*, seed: int, number: int) -> str:
    """The id of the `number`-th synthetic patient of `seed`: the same patient whenever it is generated."""
    return f"syn{seed}-{number:07d}"


def _synthetic_patient(rng, *, patient_id: str, number: int, today: date) -> Patient:
    age = rng.randint(18, 95)
    height = round(rng.gauss(170, 10), 1)
    bmi_target = min(max(rng.gauss(27, 5), 16), 48)
    weight = round(bmi_target * (height / 100) ** 2, 1)
    has_measures = rng.random() > 0.05  # a few patients have no height and weight on record
    return Patient(
        id=patient_id,
        name=f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)} {number}",
        sex=rng.choice(("female", "male", "female", "male", "other", "unknown")),
        birth_date=birth_date_for(age=age, birthday_days_ago=rng.randint(0, 364), today=today)
        if rng.random() > 0.03
        else None,
        height_cm=height if has_measures else None,
        weight_kg=weight if has_measures else None,
        bmi=compute_bmi(height_cm=height, weight_kg=weight) if has_measures else None,
        chronic_pain=rng.random() < 0.25 + (0.2 if age >= 65 else 0),
    )


def _synthetic_history(rng, *, patient_id: str, count: int, now: datetime) -> list[PatientProcedure]:
    entries = []
    for _ in range(count):
        procedure_id = rng.choice(PROCEDURES)[0]
        # Most procedures lie in the last three years; a fair share in the last 90 days, so rehab rules fire.
        days_ago = rng.randint(0, 120) if rng.random() < 0.3 else rng.randint(0, 3 * 365)
        performed_at = now - timedelta(days=days_ago, minutes=rng.randint(0, 24 * 60 - 1))
        entries.append(PatientProcedure(patient_id=patient_id, procedure_id=procedure_id, performed_at=performed_at))
    return entries


@transaction.atomic
def seed_synthetic_patients(
    *, count: int, seed: int = 1, procedures: int | None = None, today: date | None = None, progress=None
) -> int:
    """Add the synthetic patients 1..`count` of `seed` that do not exist yet, with their histories; in bulk.

    Each patient is drawn from a generator seeded by (`seed`, its number), so a patient's facts do not depend
    on how many were generated before it: running again with the same seed creates nothing twice, and a larger
    `count` only adds the new ones. `procedures` fixes the history length (default: 0 to 5 per patient). Dates
    are relative to `today`, like the named patients'. Returns how many patients were created.
    Needs the catalogue of `seed_mock_hospital`.
    """
    today = today or timezone.localdate()
    now = timezone.now()
    ids = [synthetic_patient_id(seed=seed, number=number) for number in range(1, count + 1)]
    existing = set(Patient.objects.filter(pk__startswith=f"syn{seed}-").values_list("pk", flat=True))
    created = 0
    for start in range(0, count, SYNTHETIC_BATCH):
        patients, history = [], []
        for number, patient_id in enumerate(ids[start : start + SYNTHETIC_BATCH], start=start + 1):
            if patient_id in existing:
                continue
            rng = random.Random(seed * 10_000_019 + number)
            patients.append(_synthetic_patient(rng, patient_id=patient_id, number=number, today=today))
            length = procedures if procedures is not None else rng.randint(0, 5)
            history.extend(_synthetic_history(rng, patient_id=patient_id, count=length, now=now))
        Patient.objects.bulk_create(patients, batch_size=1000)
        PatientProcedure.objects.bulk_create(history, batch_size=2000)
        created += len(patients)
        if progress is not None:
            progress(min(start + SYNTHETIC_BATCH, count))
    if created:
        bump_versions(Patient, PatientProcedure)  # bulk_create sends no signals
    return created
