"""Admin for definitions and patient recommendations; events, notifications and analytics are read-only."""

from django.contrib import admin

from recommendations.models import (
    Notification,
    PatientRecommendation,
    Recommendation,
    RecommendationDailyCount,
    RecommendationEvent,
)
from recommendations.services import announce_recommendation


@admin.register(Recommendation)
class RecommendationAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "rule"]
    search_fields = ["id", "name", "rule"]

    def get_readonly_fields(self, request, obj=None):
        return ["id"] if obj is not None else []


@admin.register(PatientRecommendation)
class PatientRecommendationAdmin(admin.ModelAdmin):
    list_display = ["id", "patient", "recommendation", "status", "source", "recommended_at"]
    list_filter = ["status", "source", "recommendation", "recommended_at"]
    search_fields = ["patient__id", "patient__name", "recommendation__id", "recommendation__name", "reason"]
    autocomplete_fields = ["patient", "recommendation"]
    date_hierarchy = "recommended_at"
    list_select_related = ["patient", "recommendation"]

    def save_model(self, request, obj: PatientRecommendation, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:  # announced like any new recommendation: an event, then a notice to the care team
            announce_recommendation(link=obj)


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
