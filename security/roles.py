"""The roles of ClinRec and the Django model permissions each one carries.

Roles are Django groups, so the admin site shows each staff member exactly what their role may do.
- viewer: reads everything;
- clinician: also writes patients and their procedure and recommendation links, and runs evaluations;
- admin: everything, including the catalogues, deletes, patient merges and users.

A patient's audit trail (`/patients/{id}/history/`) is clinical history too: clinicians and admins read it,
viewers do not.
"""

from __future__ import annotations

VIEWER = "viewer"
CLINICIAN = "clinician"
ADMIN = "admin"
ROLES = (VIEWER, CLINICIAN, ADMIN)
DEFAULT_ROLE = VIEWER

CLINICAL_MODELS = {
    "patients": ("patient",),
    "procedures": ("procedure", "patientprocedure"),
    "recommendations": (
        "recommendation",
        "patientrecommendation",
        "recommendationevent",
        "notification",
        "recommendationdailycount",
        "delivery",  # each consumer's delivery of an event; the admin role may requeue failed ones
        # Rule sets: every role reads them; only the admin role creates and activates versions.
        "ruleset",
        "rulesetactivation",
        # Population evaluations: every role follows them; only the admin role (add_) starts one.
        "populationrun",
    ),
}
CLINICIAN_WRITES = {
    ("patients", "patient"),
    ("procedures", "patientprocedure"),
    ("recommendations", "patientrecommendation"),
}


def role_permissions(role: str) -> set[tuple[str, str]]:
    """(app_label, codename) pairs a role grants."""
    perms: set[tuple[str, str]] = set()
    for app_label, model_names in CLINICAL_MODELS.items():
        for model in model_names:
            perms.add((app_label, f"view_{model}"))
            if role == CLINICIAN and (app_label, model) in CLINICIAN_WRITES:
                perms |= {(app_label, f"add_{model}"), (app_label, f"change_{model}")}
            if role == ADMIN:
                perms |= {(app_label, f"{action}_{model}") for action in ("add", "change", "delete")}
    if role in (CLINICIAN, ADMIN):
        perms.add(("patients", "evaluate_patient"))
        # The audit trail shows who changed which clinical fact: people who treat, not every reader.
        perms.add(("patients", "view_patient_history"))
    if role == ADMIN:
        perms.add(("patients", "merge_patient"))
        perms |= {
            ("auth", f"{action}_{model}")
            for model in ("user", "group")
            for action in ("view", "add", "change", "delete")
        }
    return perms
