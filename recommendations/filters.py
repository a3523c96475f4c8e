"""Filters of the patient recommendation, event and analytics lists."""

import django_filters

from recommendations.models import PatientRecommendation, RecommendationDailyCount, RecommendationEvent


class PatientRecommendationFilter(django_filters.FilterSet):
    patient = django_filters.CharFilter(field_name="patient_id", help_text="Patient id.")
    recommendation = django_filters.CharFilter(field_name="recommendation_id", help_text="Definition id.")

    class Meta:
        model = PatientRecommendation
        fields = ["patient", "recommendation", "status", "source"]


class RecommendationEventFilter(django_filters.FilterSet):
    patient = django_filters.CharFilter(field_name="patient_id", help_text="Patient id.")
    recommendation = django_filters.CharFilter(field_name="recommendation_id", help_text="Definition id.")

    class Meta:
        model = RecommendationEvent
        fields = ["patient", "recommendation", "status"]


class RecommendationCountFilter(django_filters.FilterSet):
    recommendation = django_filters.CharFilter(field_name="recommendation_id", help_text="Definition id.")
    day_from = django_filters.DateFilter(field_name="day", lookup_expr="gte", help_text="First day (YYYY-MM-DD).")
    day_to = django_filters.DateFilter(field_name="day", lookup_expr="lte", help_text="Last day (YYYY-MM-DD).")

    class Meta:
        model = RecommendationDailyCount
        fields = ["recommendation", "day", "day_from", "day_to"]
