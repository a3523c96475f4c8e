"""The patient: demographic and clinical facts the recommendation rules read."""

from __future__ import annotations

from datetime import date

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

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
        ]
        permissions = [("evaluate_patient", "Can run the recommendation engine on a patient")]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def age(self) -> int | None:
        """Whole years today, or None when the birth date is unknown."""
        if self.birth_date is None:
            return None
        return age_in_years(self.birth_date, timezone.localdate())
