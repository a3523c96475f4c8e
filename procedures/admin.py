"""Admin for the procedure catalogue and patient procedures."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from procedures.models import PatientProcedure, Procedure


@admin.register(Procedure)
class ProcedureAdmin(SimpleHistoryAdmin):
    list_display = ["id", "name", "department", "is_surgery", "code"]
    list_filter = ["department", "is_surgery"]
    search_fields = ["id", "name", "code", "department"]

    def get_readonly_fields(self, request, obj=None):
        return ["id"] if obj is not None else []


@admin.register(PatientProcedure)
class PatientProcedureAdmin(SimpleHistoryAdmin):
    list_display = ["id", "patient", "procedure", "department", "performed_at"]
    list_filter = ["procedure__department", "procedure__is_surgery", "performed_at"]
    search_fields = ["patient__id", "patient__name", "procedure__id", "procedure__name"]
    autocomplete_fields = ["patient", "procedure"]
    date_hierarchy = "performed_at"
    list_select_related = ["patient", "procedure"]

    @admin.display(description="Department", ordering="procedure__department")
    def department(self, obj: PatientProcedure) -> str:
        return obj.procedure.department
