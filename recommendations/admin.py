"""Admin for definitions, rule sets and patient recommendations; events, notifications and analytics are read-only.

A rule set is edited through one form field per registry parameter; saving always writes a new version (the
same service as the API), and its page shows the activation form and the impact report.

This module also extends the patient admin (`patients.admin.PatientAdmin`) with what concerns recommendations:
the active recommendations with their reasons and provenance on the patient page, its Evaluate and Preview
buttons, the list's "active recommendations" column and filter, and the evaluate action.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Prefetch, QuerySet, Subquery
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from clinrec.admin import ReadOnlyAdminMixin
from clinrec.admin_display import short_datetime
from patients.admin import PatientAdmin
from patients.models import Patient
from recommendations.admin_merge import PatientMergeAdminMixin
from recommendations.definitions import RULE_CHOICES
from recommendations.engine import ENABLED, RULES, InvalidParameters, config_from_parameters
from recommendations.models import (
    Delivery,
    DeliveryStatus,
    Notification,
    PatientRecommendation,
    Recommendation,
    RecommendationDailyCount,
    RecommendationEvent,
    RecommendationStatus,
    RuleSet,
    RuleSetActivation,
)
from recommendations.services import (
    Evaluation,
    RuleSetError,
    activate_rule_set,
    active_rule_set,
    change_recommendation_status,
    create_rule_set,
    evaluate_patient,
    preview_patient,
    record_manual_recommendation,
    rule_set_impact,
)

MANUAL_ONLY = "manual only"


class RecommendationForm(forms.ModelForm):
    rule = forms.TypedChoiceField(
        choices=[("", f"— {MANUAL_ONLY} (no rule) —"), *RULE_CHOICES],
        required=False,
        empty_value=None,
        help_text=Recommendation._meta.get_field("rule").help_text,
    )

    class Meta:
        model = Recommendation
        fields = ["id", "name", "description", "rule"]


@admin.register(Recommendation)
class RecommendationAdmin(SimpleHistoryAdmin):
    form = RecommendationForm
    list_display = ["id", "name", "rule_or_manual"]
    search_fields = ["id", "name", "rule"]

    def get_readonly_fields(self, request, obj=None):
        return ["id"] if obj is not None else []

    @admin.display(description="rule", ordering="rule")
    def rule_or_manual(self, obj: Recommendation) -> str:
        return obj.rule or MANUAL_ONLY


def _field_name(rule: str, key: str) -> str:
    return f"{rule}__{key}"


def _parameter_fields() -> dict[str, forms.Field]:
    """One form field per rule's `enabled` and per registry parameter, labelled with its unit."""
    fields: dict[str, forms.Field] = {}
    for rule in RULES.values():
        fields[_field_name(rule.key, ENABLED)] = forms.BooleanField(
            label=f"{rule.recommendation_name}: enabled", required=False, help_text=f"Fires when {rule.fires_when}."
        )
        for parameter in rule.parameters:
            label = f"{rule.recommendation_name}: {parameter.key} ({parameter.unit})"
            if parameter.kind == "departments":
                fields[_field_name(rule.key, parameter.key)] = forms.CharField(
                    label=label, required=False, help_text=f"{parameter.description} Comma separated."
                )
            elif parameter.kind == "integer":
                fields[_field_name(rule.key, parameter.key)] = forms.IntegerField(
                    label=label, help_text=parameter.description
                )
            else:
                fields[_field_name(rule.key, parameter.key)] = forms.FloatField(
                    label=label, help_text=parameter.description
                )
    return fields


class RuleSetFormBase(forms.ModelForm):
    """Validated by the registry's bounds; starts from the version shown (or the active one, to add)."""

    class Meta:
        model = RuleSet
        fields = ["note"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = self.instance.parameters if self.instance.pk else active_rule_set().parameters
        for rule in RULES.values():
            values = current.get(rule.key, {})
            self.initial.setdefault(_field_name(rule.key, ENABLED), values.get(ENABLED, True))
            for parameter in rule.parameters:
                value = values.get(parameter.key, parameter.default)
                if parameter.kind == "departments":
                    value = ", ".join(value)
                self.initial.setdefault(_field_name(rule.key, parameter.key), value)

    def parameters(self) -> dict[str, dict[str, Any]]:
        """The submitted parameters in the rule-set shape (after `is_valid`)."""
        data = self.cleaned_data
        parameters: dict[str, dict[str, Any]] = {}
        for rule in RULES.values():
            values: dict[str, Any] = {ENABLED: bool(data.get(_field_name(rule.key, ENABLED)))}
            for parameter in rule.parameters:
                value = data.get(_field_name(rule.key, parameter.key))
                if parameter.kind == "departments":
                    value = [name for name in (value or "").split(",") if name.strip()]
                values[parameter.key] = value
            parameters[rule.key] = values
        return parameters

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if any(_field_name(rule.key, p.key) in self.errors for rule in RULES.values() for p in rule.parameters):
            return cleaned
        try:
            config_from_parameters(self.parameters())
        except InvalidParameters as exc:
            for dotted, message in exc.errors.items():
                field = dotted.replace(".", "__")
                self.add_error(field if field in self.fields else None, f"parameters.{dotted}: {message}")
        return cleaned


RuleSetForm = type("RuleSetForm", (RuleSetFormBase,), _parameter_fields())


class RuleSetActivationInline(admin.TabularInline):
    model = RuleSetActivation
    fk_name = "rule_set"
    extra = 0
    can_delete = False
    fields = ["activated_at", "activated_by", "previous_version", "reason"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RuleSet)
class RuleSetAdmin(SimpleHistoryAdmin):
    """Versions of the rules' parameters. Saving an edit creates a new version; activation is its own action."""

    form = RuleSetForm
    change_form_template = "admin/recommendations/ruleset/change_form.html"
    list_display = ["version", "active", "note", "created_by", "created", "activated_by", "activated"]
    list_filter = ["active"]
    readonly_fields = [
        "version",
        "active",
        "created_by",
        "created_at",
        "activated_by",
        "activated_at",
        "activation_reason",
        "parameters_json",
    ]
    inlines = [RuleSetActivationInline]

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj: RuleSet) -> str:
        return short_datetime(obj.created_at)

    @admin.display(description="Activated", ordering="activated_at")
    def activated(self, obj: RuleSet) -> str:
        return short_datetime(obj.activated_at) if obj.activated_at else ""

    @admin.display(description="parameters (as stored)")
    def parameters_json(self, obj: RuleSet) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.parameters, indent=2, ensure_ascii=False))

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # versions are kept: recommendations' provenance points at them

    def save_model(self, request, obj: RuleSet, form: RuleSetForm, change: bool) -> None:
        """Never update a version: write a new, inactive one (the API's service) and show that one."""
        if change and not form.has_changed():
            self.message_user(request, f"Nothing changed; version {obj.version} kept.", messages.INFO)
            return
        created = create_rule_set(
            parameters=form.parameters(),
            created_by=request.user,
            note=form.cleaned_data.get("note", ""),
            based_on=obj if change else None,
        )
        for field in created._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding = False
        self.message_user(
            request,
            f"Saved as new version {created.version} (inactive); activate it on its page to use it.",
            messages.SUCCESS,
        )

    def get_urls(self):
        urls = [
            path(
                "<int:version>/activate/",
                self.admin_site.admin_view(self.activate_view),
                name="recommendations_ruleset_activate",
            ),
        ]
        return urls + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        rule_set = RuleSet.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        if rule_set is not None and self.has_change_permission(request, rule_set):
            extra_context["activate_url"] = reverse("admin:recommendations_ruleset_activate", args=[rule_set.pk])
            extra_context["rule_set_active"] = rule_set.active
            extra_context["impact"] = rule_set_impact(rule_set=rule_set)
        return super().change_view(request, object_id, form_url, extra_context)

    def activate_view(self, request, version: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        rule_set = get_object_or_404(RuleSet, pk=version)
        if not self.has_change_permission(request, rule_set):
            raise PermissionDenied
        try:
            activate_rule_set(rule_set=rule_set, activated_by=request.user, reason=request.POST.get("reason", ""))
        except RuleSetError as exc:
            self.message_user(request, f"Version {version} not activated: {exc.message}", messages.ERROR)
        else:
            self.message_user(request, f"Version {version} is now the active rule set.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:recommendations_ruleset_change", args=[version]))


def _fact(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):  # a record the rule used, e.g. the procedure: its name says what it was
        return str(value.get("name") or value.get("id") or value)
    if isinstance(value, list):
        return "/".join(str(item) for item in value) or "none"
    return str(value)


def provenance_text(provenance: dict[str, Any]) -> str:
    """A recommendation's provenance in a line a clinician reads: which rule on which facts, or who by hand."""
    if not provenance:
        return ""
    if provenance.get("source") == "rule":
        facts = ", ".join(
            f"{key.replace('_', ' ')} {_fact(value)}" for key, value in provenance.get("facts", {}).items()
        )
        version = provenance.get("rule_set")
        return (
            f"rule {provenance.get('rule')}"
            + (f", rule set v{version}" if version else "")
            + (f"; facts: {facts}" if facts else "")
        )
    who = provenance.get("recorded_by") or "the system"
    return f"recorded by {who}" + (f" via {provenance['via']}" if provenance.get("via") else "")


@admin.register(PatientRecommendation)
class PatientRecommendationAdmin(SimpleHistoryAdmin):
    list_display = ["recommendation_name", "patient_name", "status", "reason_line", "recommended"]
    list_filter = ["status", "source", "recommendation"]
    search_fields = ["patient__id", "patient__name", "recommendation__id", "recommendation__name", "reason"]
    autocomplete_fields = ["patient", "recommendation"]
    date_hierarchy = "recommended_at"
    list_select_related = ["patient", "recommendation"]

    readonly_fields = ["provenance_line", "provenance_json"]

    @admin.display(description="Recommendation", ordering="recommendation__name")
    def recommendation_name(self, obj: PatientRecommendation) -> str:
        return obj.recommendation.name

    @admin.display(description="Patient", ordering="patient__name")
    def patient_name(self, obj: PatientRecommendation) -> str:
        return f"{obj.patient.name} ({obj.patient_id})"

    @admin.display(description="Reason", ordering="reason")
    def reason_line(self, obj: PatientRecommendation) -> str:
        return obj.reason

    @admin.display(description="Recommended", ordering="recommended_at")
    def recommended(self, obj: PatientRecommendation) -> str:
        return short_datetime(obj.recommended_at)

    @admin.display(description="Provenance")
    def provenance_line(self, obj: PatientRecommendation) -> str:
        return provenance_text(obj.provenance)

    @admin.display(description="Provenance (as stored)")
    def provenance_json(self, obj: PatientRecommendation) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.provenance, indent=2, ensure_ascii=False))

    def save_model(self, request, obj: PatientRecommendation, form, change: bool) -> None:
        if change:
            previous = form.initial.get("status", obj.status)
            super().save_model(request, obj, form, change)
            change_recommendation_status(link=obj, previous=previous)  # dismissed or completed: tell order systems
            return
        # Recorded by hand through the API's service: who did it is its provenance, and it is announced like any
        # new recommendation (an event, then a notice to the care team).
        link, _ = record_manual_recommendation(
            patient=obj.patient,
            recommendation=obj.recommendation,
            recorded_by=request.user,
            via="admin",
            source=obj.source,
            reason=obj.reason,
            at=obj.recommended_at,
            status=obj.status,
        )
        obj.pk, obj.provenance = link.pk, link.provenance
        obj._state.adding = False


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Visible to support, changed only by the system."""


def _patient_name(patient_id_field: str) -> Subquery:
    """Events keep copies of ids, not foreign keys: the patient's name, joined in the list's own query."""
    return Subquery(Patient.objects.filter(pk=OuterRef(patient_id_field)).values("name")[:1])


def _with_name(patient_id: str, name: str | None) -> str:
    return f"{name} ({patient_id})" if name else patient_id


def _admin_link(route: str, pk: str, label: str) -> str:
    return format_html('<a href="{}">{}</a>', reverse(route, args=[pk]), label)


@admin.register(RecommendationEvent)
class RecommendationEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "event_type", "patient_link", "recommendation_link", "status", "attempts", "created"]
    list_filter = ["status", "event_type"]
    search_fields = ["patient_id", "recommendation_id", "last_error"]
    date_hierarchy = "created_at"
    readonly_fields = ["patient_link", "recommendation_link", "payload_pretty"]
    exclude = ["payload", "patient_id", "recommendation_id"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(patient_name=_patient_name("patient_id"))

    @admin.display(description="Patient", ordering="patient_id")
    def patient_link(self, obj: RecommendationEvent) -> str:
        label = _with_name(obj.patient_id, getattr(obj, "patient_name", None))
        return _admin_link("admin:patients_patient_change", obj.patient_id, label)

    @admin.display(description="Recommendation", ordering="recommendation_id")
    def recommendation_link(self, obj: RecommendationEvent) -> str:
        return _admin_link("admin:recommendations_recommendation_change", obj.recommendation_id, obj.recommendation_id)

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj: RecommendationEvent) -> str:
        return short_datetime(obj.created_at)

    @admin.display(description="Payload")
    def payload_pretty(self, obj: RecommendationEvent) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, ensure_ascii=False))


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["id", "subject_with_patient", "channel", "sent"]
    list_filter = ["channel"]
    search_fields = ["subject", "body", "event__patient_id"]
    list_select_related = ["event"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(patient_name=_patient_name("event__patient_id"))

    @admin.display(description="Sent", ordering="sent_at")
    def sent(self, obj: Notification) -> str:
        return short_datetime(obj.sent_at)

    @admin.display(description="Subject", ordering="subject")
    def subject_with_patient(self, obj: Notification) -> str:
        return f"{obj.subject} — {_with_name(obj.event.patient_id, getattr(obj, 'patient_name', None))}"


@admin.register(RecommendationDailyCount)
class RecommendationDailyCountAdmin(ReadOnlyAdmin):
    list_display = ["day", "recommendation_id", "name", "count"]
    list_filter = ["day", "recommendation_id"]
    search_fields = ["recommendation_id", "name"]
    date_hierarchy = "day"


# --- The patient admin, extended with recommendations ----------------------------------------------------


class PatientRecommendationInline(admin.TabularInline):
    """Recording a recommendation by hand from the patient page (the summary above shows the active ones)."""

    model = PatientRecommendation
    extra = 0
    fields = ["recommendation", "status", "recommended_at", "reason"]
    readonly_fields = ["recommended_at", "reason"]
    autocomplete_fields = ["recommendation"]
    show_change_link = True
    verbose_name_plural = "recommendations (all, to record one by hand or change a status)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("recommendation")


class HasActiveRecommendationFilter(admin.SimpleListFilter):
    title = "active recommendation"
    parameter_name = "has_active_recommendation"

    def lookups(self, request, model_admin):
        return [("yes", "Has one"), ("no", "Has none")]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        active = PatientRecommendation.objects.filter(patient=OuterRef("pk"), status=RecommendationStatus.ACTIVE)
        if self.value() == "yes":
            return queryset.filter(Exists(active))
        if self.value() == "no":
            return queryset.exclude(Exists(active))
        return queryset


class RecommendingPatientAdmin(PatientMergeAdminMixin, PatientAdmin):
    """The patient admin with the active recommendations, the Evaluate and Preview buttons and the action."""

    list_display = [*PatientAdmin.list_display, "active_recommendations"]
    list_filter = [*PatientAdmin.list_filter, HasActiveRecommendationFilter]
    inlines = [*PatientAdmin.inlines, PatientRecommendationInline]
    actions = [*PatientAdmin.actions, "evaluate_selected"]
    change_form_template = "admin/recommendations/patient/change_form.html"

    def get_queryset(self, request):
        active = PatientRecommendation.objects.filter(status=RecommendationStatus.ACTIVE).select_related(
            "recommendation"
        )
        return super().get_queryset(request).prefetch_related(Prefetch("recommendations", active, "active_links"))

    @admin.display(description="Active recommendations")
    def active_recommendations(self, obj: Patient) -> str:
        return ", ".join(link.recommendation.name for link in obj.active_links)

    def save_formset(self, request, form, formset, change: bool) -> None:
        if formset.model is not PatientRecommendation:
            super().save_formset(request, form, formset, change)
            return
        # New rows go through the API's service (provenance: who, via the admin; then the event and notice).
        links = formset.save(commit=False)
        for obj in formset.deleted_objects:
            obj.delete()
        for link in links:
            if link.pk is None:
                record_manual_recommendation(
                    patient=form.instance,
                    recommendation=link.recommendation,
                    recorded_by=request.user,
                    via="admin",
                    status=link.status,
                    at=link.recommended_at,
                )
            else:
                previous = PatientRecommendation.objects.filter(pk=link.pk).values_list("status", flat=True).first()
                link.save(update_fields=["recommendation", "status"])
                if previous is not None:
                    change_recommendation_status(link=link, previous=previous)

    # --- The patient page: active recommendations, Evaluate and Preview -----------------------------------

    def summary_context(self, request, patient: Patient) -> dict[str, Any]:
        context = super().summary_context(request, patient)
        links = patient.recommendations.filter(status=RecommendationStatus.ACTIVE).select_related("recommendation")
        context["active_recommendations"] = [
            {"link": link, "provenance": provenance_text(link.provenance)} for link in links
        ]
        context["can_evaluate"] = self.has_evaluate_permission(request)
        return context

    @admin.action(description="Evaluate selected patients", permissions=["evaluate"])
    def evaluate_selected(self, request, queryset):
        for patient in queryset:
            self._report(request, patient, evaluate_patient(patient_id=patient.pk))

    def _report(self, request, patient: Patient, evaluation: Evaluation) -> None:
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
        """The "Preview" button: a dry run with the active rule set, shown on the patient page; nothing recorded."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        patient = self._patient_for_evaluation(request, object_id)
        evaluation = preview_patient(patient_id=patient.pk, at=timezone.now())
        # The patient page itself, drawn as for a GET (its edit form still posts to the change URL).
        page_request = copy.copy(request)
        page_request.method = "GET"
        change_url = reverse("admin:patients_patient_change", args=[patient.pk])
        return self.change_view(page_request, object_id, form_url=change_url, extra_context={"preview": evaluation})

    def has_evaluate_permission(self, request) -> bool:
        return request.user.has_perm("patients.evaluate_patient")


admin.site.unregister(Patient)
admin.site.register(Patient, RecommendingPatientAdmin)


# --- Deliveries: one consumer's handling of one event (issue 10) ------------------------------------------------


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    """Each consumer's delivery of each event; failed ones can be requeued (the same service as the command)."""

    list_display = ["id", "event", "consumer", "status", "attempts", "delivered_at", "last_error"]
    list_filter = ["consumer", "status"]
    search_fields = ["event__id", "event__patient_id", "last_error"]
    list_select_related = ["event"]
    actions = ["requeue_failed"]

    def has_requeue_permission(self, request) -> bool:
        return request.user.has_perm("recommendations.change_delivery")

    @admin.action(description="Requeue the selected failed deliveries", permissions=["requeue"])
    def requeue_failed(self, request, queryset) -> None:
        from recommendations.services import requeue_deliveries

        ids = list(queryset.filter(status=DeliveryStatus.FAILED).values_list("pk", flat=True))
        count = requeue_deliveries(delivery_ids=ids) if ids else 0
        self.message_user(request, f"Requeued {count} failed deliveries.", messages.SUCCESS)
