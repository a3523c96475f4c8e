"""The admin's "Merge into…" action on the patient list, and its confirmation page.

Selecting one patient (the duplicate) and running the action opens a page where the admin picks the target
by id; the page then shows what will move and what will collapse (the same plan the merge service follows)
and merges only when the admin confirms. The merge is the API's (`recommendations.services.merge`).
Kept in its own module and template so the patient page can be reorganised without touching it.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from rest_framework.exceptions import APIException, ValidationError

from patients.models import Patient
from procedures.models import PatientProcedure
from recommendations.models import PatientRecommendation
from recommendations.services import merge_patients, plan_merge

MERGE_PERMISSION = "patients.merge_patient"


def _error_text(error: APIException) -> str:
    detail = error.detail
    if isinstance(detail, dict):
        return " ".join(str(message) for messages_ in detail.values() for message in messages_)
    return str(detail)


class PatientMergeAdminMixin:
    """Adds the "Merge into…" action and its confirmation page to the patient admin."""

    def get_actions(self, request):
        actions = super().get_actions(request)
        if request.user.has_perm(MERGE_PERMISSION):
            actions["merge_into"] = (
                PatientMergeAdminMixin.merge_into,
                "merge_into",
                PatientMergeAdminMixin.merge_into.short_description,
            )
        return actions

    @admin.action(description="Merge into…")
    def merge_into(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one patient: the duplicate to merge.", messages.ERROR)
            return None
        return HttpResponseRedirect(reverse("admin:patients_patient_merge", args=[queryset.get().pk]))

    def get_urls(self):
        urls = [
            path(
                "<path:object_id>/merge/",
                self.admin_site.admin_view(self.merge_view),
                name="patients_patient_merge",
            )
        ]
        return urls + super().get_urls()

    def merge_view(self, request, object_id: str):
        """GET: the target chooser, then the plan; POST with `confirm`: the merge itself."""
        if not request.user.has_perm(MERGE_PERMISSION):
            raise PermissionDenied
        source = get_object_or_404(Patient, pk=object_id)
        target_id = (request.POST.get("target") or request.GET.get("target") or "").strip()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": source,
            "title": f"Merge {source} into…",
            "target_id": target_id,
        }
        if source.is_tombstone:
            context["error"] = f"This patient was already merged into '{source.merged_into_id}'."
        elif target_id:
            target = Patient.objects.filter(pk=target_id).first()
            if target is None:
                context["error"] = f"No patient with id '{target_id}'."
            elif target.pk == source.pk:
                context["error"] = "A patient cannot be merged into itself."
            elif target.is_tombstone:
                context["error"] = f"'{target.pk}' was itself merged into '{target.merged_into_id}'."
            elif request.method == "POST" and request.POST.get("confirm"):
                try:
                    merge_patients(target_id=target.pk, source_id=source.pk, merged_by=request.user)
                except (APIException, Http404, ValidationError) as error:
                    text = _error_text(error) if isinstance(error, APIException) else str(error)
                    self.message_user(request, f"Not merged: {text}", messages.ERROR)
                    return HttpResponseRedirect(request.path)
                self.message_user(request, f"{source} was merged into {target}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:patients_patient_change", args=[target.pk]))
            else:
                context.update(self._plan_context(source, target))
        return TemplateResponse(request, "admin/patients/patient/merge.html", context)

    def _plan_context(self, source: Patient, target: Patient) -> dict:
        plan = plan_merge(source=source, target=target)
        procedures = PatientProcedure.objects.select_related("procedure").in_bulk(
            plan.moved_procedures + plan.collapsed_procedures
        )
        links = PatientRecommendation.objects.select_related("recommendation").in_bulk(
            plan.moved_recommendations + plan.collapsed_recommendations
        )
        return {
            "target": target,
            "plan": plan,
            "moved_procedures": [procedures[pk] for pk in plan.moved_procedures],
            "collapsed_procedures": [procedures[pk] for pk in plan.collapsed_procedures],
            "moved_recommendations": [links[pk] for pk in plan.moved_recommendations],
            "collapsed_recommendations": [links[pk] for pk in plan.collapsed_recommendations],
            "demographics": sorted(plan.demographics.items()),
        }
