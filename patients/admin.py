"""Admin for patients: the patient page shows its procedure history and recommendations inline, with an
"Evaluate" button (records what the engine finds) and a "Preview" button (a dry run: shows it, records nothing).
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from simple_history.admin import SimpleHistoryAdmin

from patients.models import Patient, PatientMerge
from patients.services import with_derived_bmi
from procedures.models import PatientProcedure
from recommendations.admin_merge import PatientMergeAdminMixin
from recommendations.models import PatientRecommendation
from recommendations.services import announce_recommendation, evaluate_patient, manual_provenance, preview_patient


class PatientProcedureInline(admin.TabularInline):
    model = PatientProcedure
    extra = 0
    fields = ["procedure", "performed_at", "report"]
    autocomplete_fields = ["procedure"]
    ordering = ["-performed_at"]
    show_change_link = True


class PatientRecommendationInline(admin.TabularInline):
    model = PatientRecommendation
    extra = 0
    fields = ["recommendation", "status", "source", "recommended_at", "reason"]
    readonly_fields = ["source", "recommended_at", "reason"]
    autocomplete_fields = ["recommendation"]
    show_change_link = True


@admin.register(Patient)
class PatientAdmin(PatientMergeAdminMixin, SimpleHistoryAdmin):
    list_display = ["id", "name", "birth_date", "age", "sex", "bmi", "chronic_pain", "updated_at"]
    list_filter = ["sex", "chronic_pain", "birth_date"]
    search_fields = ["id", "name", "email"]
    readonly_fields = ["age", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["id", "name", "birth_date", "age", "sex", "email"]}),
        ("Clinical facts", {"fields": ["height_cm", "weight_kg", "bmi", "chronic_pain"]}),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]
    inlines = [PatientProcedureInline, PatientRecommendationInline]
    actions = ["evaluate_selected"]
    change_form_template = "admin/patients/patient/change_form.html"

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "id"] if obj is not None else fields

    def save_model(self, request, obj: Patient, form, change: bool) -> None:
        # The API's rule: a BMI left empty, or not edited while height or weight were, follows the measurements.
        measured = {"height_cm", "weight_kg", "bmi"}
        edited = measured & set(form.changed_data) if change else measured
        data = with_derived_bmi({field: getattr(obj, field) for field in edited}, current=obj if change else None)
        obj.bmi = data.get("bmi", obj.bmi)
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        if formset.model is PatientRecommendation:
            for link in formset.new_objects:  # announced like any new recommendation: an event, then a notice
                link.provenance = manual_provenance(recorded_by=request.user, via="admin")
                link.save(update_fields=["provenance"])
                announce_recommendation(link=link)

    @admin.display(description="Age")
    def age(self, obj: Patient):
        return obj.age

    @admin.action(description="Evaluate selected patients", permissions=["evaluate"])
    def evaluate_selected(self, request, queryset):
        for patient in queryset:
            self._report(request, patient, evaluate_patient(patient_id=patient.pk))

    def _report(self, request, patient: Patient, evaluation) -> None:
        if not evaluation.recommendations:
            self.message_user(request, f"{patient}: nothing to recommend.", messages.INFO)
            return
        parts = [
            f"{item.name} ({'new' if item.new else 'already active'}: {item.reason})"
            for item in evaluation.recommendations
        ]
        self.message_user(request, f"{patient}: {'; '.join(parts)}", messages.SUCCESS)

    def get_urls(self):
        urls = [
            path(
                "<path:object_id>/evaluate/",
                self.admin_site.admin_view(self.evaluate_view),
                name="patients_patient_evaluate",
            ),
            path(
                "<path:object_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="patients_patient_preview",
            ),
        ]
        return urls + super().get_urls()

    def _patient_for_evaluation(self, request, object_id: str) -> Patient:
        if not self.has_evaluate_permission(request):
            raise PermissionDenied
        return get_object_or_404(Patient, pk=object_id)

    def evaluate_view(self, request, object_id: str):
        """The "Evaluate" button: run the engine, record what it finds, and come back to the patient page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        patient = self._patient_for_evaluation(request, object_id)
        self._report(request, patient, evaluate_patient(patient_id=patient.pk))
        return HttpResponseRedirect(reverse("admin:patients_patient_change", args=[patient.pk]))

    def preview_view(self, request, object_id: str):
        """The "Preview" button: a dry run with the active rule set, shown on a page; nothing is recorded."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        patient = self._patient_for_evaluation(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": patient,
            "title": f"Preview for {patient}",
            "evaluation": preview_patient(patient_id=patient.pk),
        }
        return TemplateResponse(request, "admin/patients/patient/preview.html", context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_evaluate"] = obj is not None and self.has_evaluate_permission(request)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def has_evaluate_permission(self, request) -> bool:
        return request.user.has_perm("patients.evaluate_patient")


@admin.register(PatientMerge)
class PatientMergeAdmin(admin.ModelAdmin):
    """The record of each merge (read-only: merges are made with the patient list's "Merge into…" action)."""

    list_display = ["source", "target", "merged_by", "merged_at"]
    readonly_fields = ["source", "target", "merged_by", "merged_at", "moved", "collapsed"]
    search_fields = ["source__id", "target__id"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
