"""Admin for patients: the patient page shows its procedure history and recommendations inline."""

from django.contrib import admin, messages

from patients.models import Patient
from patients.services import with_derived_bmi
from procedures.models import PatientProcedure
from recommendations.models import PatientRecommendation
from recommendations.services import announce_recommendation, evaluate_patient


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
class PatientAdmin(admin.ModelAdmin):
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
                announce_recommendation(link=link)

    @admin.display(description="Age")
    def age(self, obj: Patient):
        return obj.age

    @admin.action(description="Evaluate selected patients", permissions=["evaluate"])
    def evaluate_selected(self, request, queryset):
        for patient in queryset:
            evaluation = evaluate_patient(patient_id=patient.pk)
            if not evaluation.recommendations:
                self.message_user(request, f"{patient}: nothing to recommend.", messages.INFO)
                continue
            parts = [
                f"{item.name} ({'new' if item.new else 'already active'}: {item.reason})"
                for item in evaluation.recommendations
            ]
            self.message_user(request, f"{patient}: {'; '.join(parts)}", messages.SUCCESS)

    def has_evaluate_permission(self, request) -> bool:
        return request.user.has_perm("patients.evaluate_patient")
