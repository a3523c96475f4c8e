"""Admin for definitions, rule sets and patient recommendations; events, notifications and analytics are read-only.

A rule set is edited through one form field per registry parameter; saving always writes a new version (the
same service as the API), and its page shows the activation form and the impact report.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

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
    RuleSet,
    RuleSetActivation,
)
from recommendations.services import (
    RuleSetError,
    activate_rule_set,
    active_rule_set,
    announce_recommendation,
    change_recommendation_status,
    create_rule_set,
    manual_provenance,
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
class RecommendationAdmin(admin.ModelAdmin):
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
class RuleSetAdmin(admin.ModelAdmin):
    """Versions of the rules' parameters. Saving an edit creates a new version; activation is its own action."""

    form = RuleSetForm
    change_form_template = "admin/recommendations/ruleset/change_form.html"
    list_display = ["version", "active", "note", "created_by", "created_at", "activated_by", "activated_at"]
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


@admin.register(PatientRecommendation)
class PatientRecommendationAdmin(admin.ModelAdmin):
    list_display = ["id", "patient", "recommendation", "status", "source", "recommended_at"]
    list_filter = ["status", "source", "recommendation", "recommended_at"]
    search_fields = ["patient__id", "patient__name", "recommendation__id", "recommendation__name", "reason"]
    autocomplete_fields = ["patient", "recommendation"]
    date_hierarchy = "recommended_at"
    list_select_related = ["patient", "recommendation"]

    readonly_fields = ["provenance_json"]

    @admin.display(description="provenance")
    def provenance_json(self, obj: PatientRecommendation) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.provenance, indent=2, ensure_ascii=False))

    def save_model(self, request, obj: PatientRecommendation, form, change: bool) -> None:
        if not change:  # recorded by hand: who did it is its provenance
            obj.provenance = manual_provenance(recorded_by=request.user, via="admin")
        previous = form.initial.get("status", obj.status) if change else None
        super().save_model(request, obj, form, change)
        if not change:  # announced like any new recommendation: an event, then a notice to the care team
            announce_recommendation(link=obj)
        elif previous is not None:  # dismissed or completed: an event for the order systems
            change_recommendation_status(link=obj, previous=previous)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Visible to support, changed only by the system."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RecommendationEvent)
class RecommendationEventAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "event_type",
        "patient_id",
        "recommendation_id",
        "status",
        "attempts",
        "created_at",
        "consumed_at",
    ]
    list_filter = ["status", "event_type", "created_at"]
    search_fields = ["patient_id", "recommendation_id", "last_error"]
    date_hierarchy = "created_at"


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["id", "event", "channel", "subject", "sent_at"]
    list_filter = ["channel", "sent_at"]
    search_fields = ["subject", "body"]


@admin.register(RecommendationDailyCount)
class RecommendationDailyCountAdmin(ReadOnlyAdmin):
    list_display = ["day", "recommendation_id", "name", "count"]
    list_filter = ["day", "recommendation_id"]
    search_fields = ["recommendation_id", "name"]
    date_hierarchy = "day"


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
