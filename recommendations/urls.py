from django.urls import path
from rest_framework.routers import SimpleRouter

from recommendations.merge_views import MergePatientView
from recommendations.views import (
    EvaluatePatientView,
    PatientRecommendationViewSet,
    PopulationRunViewSet,
    RecommendationAnalyticsViewSet,
    RecommendationEventViewSet,
    RecommendationViewSet,
    RuleSetViewSet,
)

router = SimpleRouter()
router.register("recommendations", RecommendationViewSet, basename="recommendation")
router.register("patient-recommendations", PatientRecommendationViewSet, basename="patient-recommendation")
router.register("rule-sets", RuleSetViewSet, basename="rule-set")
router.register("evaluations", PopulationRunViewSet, basename="population-run")
router.register("events", RecommendationEventViewSet, basename="event")
router.register("analytics/recommendations", RecommendationAnalyticsViewSet, basename="analytics-recommendation")

urlpatterns = [
    path("patients/<str:pk>/evaluate/", EvaluatePatientView.as_view(), name="patient-evaluate"),
    path("patients/<str:pk>/merge/", MergePatientView.as_view(), name="patient-merge"),
    *router.urls,
]
