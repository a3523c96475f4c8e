"""The procedure catalogue and the history of procedures each patient underwent."""

from django.db import models

from clinrec.history import audited_history
from clinrec.identifiers import FhirIdModelField


class Procedure(models.Model):
    """A procedure of the hospital's catalogue, identified by the information system's id."""

    id = FhirIdModelField(primary_key=True)
    name = models.CharField(max_length=200)
    department = models.CharField(max_length=100, help_text="Performing department, e.g. orthopaedics.")
    is_surgery = models.BooleanField(default=False)
    code = models.CharField(max_length=64, blank=True, default="", help_text="Optional code, e.g. SNOMED CT.")
    description = models.TextField(blank=True, default="")

    history = audited_history()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["department"], name="procedure_department_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class PatientProcedure(models.Model):
    """One procedure performed on one patient: the history the post-op rule reads."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="procedures")
    procedure = models.ForeignKey(Procedure, on_delete=models.PROTECT, related_name="performed")
    performed_at = models.DateTimeField()
    report = models.TextField(blank=True, default="")

    history = audited_history()

    class Meta:
        ordering = ["-performed_at", "id"]
        indexes = [
            models.Index(fields=["patient", "-performed_at"], name="patproc_patient_date_idx"),
            models.Index(fields=["procedure"], name="patproc_procedure_idx"),
        ]
        verbose_name = "patient procedure"

    def __str__(self) -> str:
        return f"{self.procedure_id} on {self.patient_id} at {self.performed_at:%Y-%m-%d}"
