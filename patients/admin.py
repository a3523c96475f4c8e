"""Admin for patients: the patient page is a clinical summary (who, the measurements, the procedure history as a
timeline), with the edit form below it, collapsed for those who may only read.

The admin writes through `patients.services`, as the API does, and an edit locks the patient's row first.
What concerns recommendations (the active ones on the page, the Evaluate and Preview buttons, the list's
"active recommendations" column) is added by `recommendations/admin.py`, which extends `PatientAdmin`: this
app knows nothing of recommendations.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import admin
from django.db.models import OuterRef, QuerySet, Subquery
from django.urls import reverse
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from clinrec.admin import ReadOnlyAdminMixin
from patients.models import Patient, PatientMerge
from patients.services import compute_bmi, create_patient, update_patient
from procedures.models import PatientProcedure

# Bands a ward thinks in; the last one is open-ended.
AGE_BANDS = [("0-17", 0, 17), ("18-39", 18, 39), ("40-64", 40, 64), ("65-79", 65, 79), ("80+", 80, None)]


def _years_before(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February in a year without one
        return today.replace(year=today.year - years, day=28)


class AgeBandFilter(admin.SimpleListFilter):
    """Age in whole years today, by band (a birth date filter would offer "today" and "past 7 days")."""

    title = "age"
    parameter_name = "age_band"

    def lookups(self, request, model_admin):
        return [(key, key) for key, _, _ in AGE_BANDS] + [("unknown", "unknown")]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == "unknown":
            return queryset.filter(birth_date__isnull=True)
        for key, youngest, oldest in AGE_BANDS:
            if key == value:
                today = timezone.localdate()
                # Aged at least `youngest`: born on or before today minus `youngest` years.
                queryset = queryset.filter(birth_date__lte=_years_before(today, youngest))
                if oldest is not None:  # not yet `oldest + 1`: born after today minus `oldest + 1` years
                    queryset = queryset.filter(birth_date__gt=_years_before(today, oldest + 1))
                return queryset
        return queryset


def bmi_source(patient: Patient) -> str:
    """Where the stored BMI comes from, as far as the record tells: computed from the measurements, or entered."""
    if patient.bmi is None:
        return ""
    if compute_bmi(height_cm=patient.height_cm, weight_kg=patient.weight_kg) == patient.bmi:
        return f"from height {patient.height_cm:g} cm and weight {patient.weight_kg:g} kg"
    return "entered"


@admin.register(Patient)
class PatientAdmin(SimpleHistoryAdmin):
    """The patient list and the patient page. Extended by `recommendations.admin` (see the module docstring)."""

    list_display = ["patient", "age", "sex", "bmi", "chronic_pain", "last_procedure"]
    list_filter = [AgeBandFilter, "sex", "chronic_pain"]
    search_fields = ["id", "name", "email"]
    fieldsets = [
        (None, {"fields": ["id", "name", "birth_date", "sex", "email"]}),
        ("Clinical facts", {"fields": ["height_cm", "weight_kg", "bmi", "chronic_pain"]}),
    ]
    actions: list[Any] = []
    change_form_template = "admin/patients/patient/change_form.html"

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.fieldsets
        return [*self.fieldsets, ("Record", {"fields": ["age", "created_at", "updated_at"]})]

    def get_readonly_fields(self, request, obj=None):
        return ["id", "age", "created_at", "updated_at"] if obj is not None else []

    def get_queryset(self, request):
        # The last procedure as two annotations (one query for the whole page, however many rows).
        last = PatientProcedure.objects.filter(patient=OuterRef("pk")).order_by("-performed_at", "-id")
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_procedure_name=Subquery(last.values("procedure__name")[:1]),
                last_procedure_at=Subquery(last.values("performed_at")[:1]),
            )
        )

    @admin.display(description="Patient", ordering="name")
    def patient(self, obj: Patient) -> str:
        return str(obj)  # name (id): one column, and room for the clinical ones

    @admin.display(description="Age")
    def age(self, obj: Patient) -> int | None:
        return obj.age

    @admin.display(description="Last procedure", ordering="last_procedure_at")
    def last_procedure(self, obj: Patient) -> str:
        name = getattr(obj, "last_procedure_name", None)
        if name is None:
            return ""
        return f"{name}, {timezone.localtime(obj.last_procedure_at):%Y-%m-%d}"

    # --- Writes: the API's services ----------------------------------------------------------------------

    def save_model(self, request, obj: Patient, form, change: bool) -> None:
        if not change:
            data = {name: form.cleaned_data[name] for name in form.fields if name in form.cleaned_data}
            created = create_patient(data=data)
            self._adopt(obj, created)
            return
        # Locked like an API update (the admin's change view is one transaction); only the edited fields are
        # written, so a field someone else changed meanwhile keeps their value, and the BMI is derived from
        # the measurements as stored under the lock.
        locked = Patient.objects.select_for_update(no_key=True).get(pk=obj.pk)
        edited = {name: form.cleaned_data[name] for name in form.changed_data if name in form.cleaned_data}
        self._adopt(obj, update_patient(patient=locked, data=edited))

    @staticmethod
    def _adopt(obj: Patient, saved: Patient) -> None:
        """The admin goes on with `obj` (inlines, the log): give it the row as the service wrote it."""
        for field in saved._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False

    # --- The patient page --------------------------------------------------------------------------------

    def summary_context(self, request, patient: Patient) -> dict[str, Any]:
        """What the summary at the top of the patient page shows; subclasses add their part."""
        history = list(patient.procedures.select_related("procedure").order_by("-performed_at", "-id"))
        can_edit = request.user.has_perm("procedures.change_patientprocedure")
        for entry in history:  # the change page is read-only for those who may only view
            entry.admin_url = reverse("admin:procedures_patientprocedure_change", args=[entry.pk])
            entry.report_line = entry.report.strip().splitlines()[0] if entry.report.strip() else ""
        return {
            "patient": patient,
            "bmi_source": bmi_source(patient),
            "history": history,
            "can_edit_history": can_edit,
            "can_add_history": request.user.has_perm("procedures.add_patientprocedure"),
        }

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        patient = self.get_object(request, object_id)
        if patient is not None and self.has_view_or_change_permission(request, patient):
            extra_context.update(self.summary_context(request, patient))
            extra_context["edit_open"] = self.has_change_permission(request, patient)
            extra_context["subtitle"] = None  # the summary names the patient
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(PatientMerge)
class PatientMergeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The record of each merge (read-only: merges are made with the patient list's "Merge into…" action)."""

    list_display = ["source", "target", "merged_by", "merged_at"]
    readonly_fields = ["source", "target", "merged_by", "merged_at", "moved", "collapsed"]
    search_fields = ["source__id", "target__id"]
