"""The procedure catalogue and the history of procedures each patient underwent."""

from django.db import models

from clinrec.history import audited_history
from clinrec.identifiers import FhirIdModelField
from clinrec.validators import free_text, single_line_text


class Procedure(models.Model):
    """A procedure of the hospital's catalogue, identified by the information system's id."""

    id = FhirIdModelField(primary_key=True)
    name = models.CharField(max_length=200, validators=[single_line_text])
    department = models.CharField(
        max_length=100, validators=[single_line_text], help_text="Performing department, e.g. orthopaedics."
    )
    is_surgery = models.BooleanField(
        "surgery", default=False, help_text="A surgical procedure (post-op rules read it)."
    )
    code = models.CharField(
        max_length=64, blank=True, default="", validators=[single_line_text], help_text="Optional code, e.g. SNOMED CT."
    )
    description = models.TextField(blank=True, default="", validators=[free_text])

    history = audited_history()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["department"], name="procedure_department_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def department_name(self) -> str:
        """The department as people write it: "general-surgery" reads "General surgery"."""
        return department_name(self.department)


def department_name(department: str) -> str:
    return department.replace("-", " ").replace("_", " ").strip().capitalize()


class PatientProcedure(models.Model):
    """One procedure performed on one patient: the history the post-op rule reads."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="procedures")
    procedure = models.ForeignKey(Procedure, on_delete=models.PROTECT, related_name="performed")
    performed_at = models.DateTimeField()
    report = models.TextField(blank=True, default="", validators=[free_text])

    history = audited_history()

    class Meta:
        ordering = ["-performed_at", "id"]
        indexes = [
            models.Index(fields=["patient", "-performed_at"], name="patproc_patient_date_idx"),
            models.Index(fields=["procedure"], name="patproc_procedure_idx"),
        ]
        verbose_name = "patient procedure"

    def __str__(self) -> str:
        return f"{self.procedure.name} on {self.performed_at:%Y-%m-%d}"
