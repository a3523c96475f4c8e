"""The patient: demographic and clinical facts the recommendation rules read."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from clinrec.history import audited_history
from clinrec.identifiers import FhirIdModelField
from clinrec.validators import single_line_text


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


def age_in_years(birth_date: date, today: date) -> int:
    """Whole years between `birth_date` and `today` (a birthday on Feb 29 counts from Mar 1 in other years)."""
    years = today.year - birth_date.year
    if (today.month, today.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


class Patient(models.Model):
    """A patient as the hospital's patient index knows it, identified by the index's own id."""

    id = FhirIdModelField(primary_key=True)
    name = models.CharField(max_length=200, validators=[single_line_text])
    birth_date = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=7, choices=Sex.choices, default=Sex.UNKNOWN)
    height_cm = models.FloatField(
        "height (cm)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(300)],
        help_text="Height in cm.",
    )
    weight_kg = models.FloatField(
        "weight (kg)",
        null=True,
        blank=True,
        validators=[MinValueValidator(0.1), MaxValueValidator(1000)],
        help_text="Weight in kg.",
    )
    bmi = models.FloatField(
        "BMI",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(250)],
        help_text="Body-mass index (kg/m²). Computed from height and weight when omitted.",
    )
    chronic_pain = models.BooleanField(
        default=False, help_text="Long-standing pain (the physical therapy rule reads it)."
    )
    email = models.EmailField(blank=True, default="", help_text="Optional; copied on recommendation notices.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merged_from",
        editable=False,
        help_text="Set when this record was merged into another one: it is then a tombstone pointing there.",
    )

    history = audited_history()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["name"], name="patient_name_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(height_cm__isnull=True) | models.Q(height_cm__gt=0), name="patient_height_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(weight_kg__isnull=True) | models.Q(weight_kg__gt=0), name="patient_weight_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(bmi__isnull=True) | models.Q(bmi__gt=0), name="patient_bmi_positive"
            ),
            models.CheckConstraint(condition=models.Q(sex__in=Sex.values), name="patient_sex_valid"),
            # A tombstone never points at itself (a self-merge is refused before it gets here).
            models.CheckConstraint(
                condition=~models.Q(merged_into=models.F("id")), name="patient_not_merged_into_itself"
            ),
        ]
        permissions = [
            ("evaluate_patient", "Can run the recommendation engine on a patient"),
            ("merge_patient", "Can merge a duplicate patient into another"),
            ("view_patient_history", "Can read the audit trail of a patient's record"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def is_tombstone(self) -> bool:
        """Merged into another patient: kept only as a pointer to it."""
        return self.merged_into_id is not None

    @property
    def age(self) -> int | None:
        """Whole years today, or None when the birth date is unknown."""
        if self.birth_date is None:
            return None
        return age_in_years(self.birth_date, timezone.localdate())


class PatientMerge(models.Model):
    """The record of one merge: a duplicate (`source`) folded into `target`, by whom, when, and what it did.

    `moved` and `collapsed` list the record ids per kind (`procedures`, `recommendations`, `events`;
    `demographics` names the fields filled from the source), so the merge can be explained and checked later.
    """

    source = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="merge_as_source")
    target = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="merges_as_target")
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    merged_at = models.DateTimeField(default=timezone.now)
    moved = models.JSONField(default=dict)
    collapsed = models.JSONField(default=dict)

    class Meta:
        ordering = ["-merged_at", "-id"]
        verbose_name = "patient merge"

    def __str__(self) -> str:
        return f"{self.source_id} merged into {self.target_id} at {self.merged_at:%Y-%m-%d %H:%M}"
