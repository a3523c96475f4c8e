"""Admin for the procedure catalogue and patient procedures; departments are shown by name, not by slug."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from clinrec.admin_display import short_datetime
from procedures.models import PatientProcedure, Procedure, department_name


class DepartmentFilter(admin.SimpleListFilter):
    """The departments in use, by name."""

    title = "department"
    parameter_name = "department"
    field = "department"

    def lookups(self, request, model_admin):
        departments = Procedure.objects.order_by("department").values_list("department", flat=True).distinct()
        return [(slug, department_name(slug)) for slug in departments]

    def queryset(self, request, queryset):
        return queryset.filter(**{self.field: self.value()}) if self.value() else queryset


class PerformingDepartmentFilter(DepartmentFilter):
    field = "procedure__department"


@admin.register(Procedure)
class ProcedureAdmin(SimpleHistoryAdmin):
    list_display = ["id", "name", "department_label", "is_surgery", "code"]
    list_filter = [DepartmentFilter, "is_surgery"]
    search_fields = ["id", "name", "code", "department"]

    def get_readonly_fields(self, request, obj=None):
        return ["id"] if obj is not None else []

    @admin.display(description="Department", ordering="department")
    def department_label(self, obj: Procedure) -> str:
        return obj.department_name


@admin.register(PatientProcedure)
class PatientProcedureAdmin(SimpleHistoryAdmin):
    list_display = ["performed", "patient_name", "procedure_name", "department", "surgery"]
    list_display_links = ["performed"]
    list_filter = [PerformingDepartmentFilter, ("procedure__is_surgery", admin.BooleanFieldListFilter)]
    search_fields = ["patient__id", "patient__name", "procedure__id", "procedure__name"]
    autocomplete_fields = ["patient", "procedure"]
    date_hierarchy = "performed_at"
    list_select_related = ["patient", "procedure"]

    @admin.display(description="Performed", ordering="performed_at")
    def performed(self, obj: PatientProcedure) -> str:
        return short_datetime(obj.performed_at)

    @admin.display(description="Patient", ordering="patient__name")
    def patient_name(self, obj: PatientProcedure) -> str:
        return f"{obj.patient.name} ({obj.patient_id})"

    @admin.display(description="Procedure", ordering="procedure__name")
    def procedure_name(self, obj: PatientProcedure) -> str:
        return obj.procedure.name

    @admin.display(description="Department", ordering="procedure__department")
    def department(self, obj: PatientProcedure) -> str:
        return obj.procedure.department_name

    @admin.display(description="Surgery", boolean=True, ordering="procedure__is_surgery")
    def surgery(self, obj: PatientProcedure) -> bool:
        return obj.procedure.is_surgery
