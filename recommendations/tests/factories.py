"""Factories for recommendation definitions and patient recommendations."""

import factory

from patients.tests.factories import PatientFactory
from recommendations.models import PatientRecommendation, Recommendation


class RecommendationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Recommendation

    id = factory.Sequence(lambda n: f"rec-{n}")
    name = factory.Sequence(lambda n: f"Programme {n}")
    description = "A care programme."
    rule = None


class PatientRecommendationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PatientRecommendation

    patient = factory.SubFactory(PatientFactory)
    recommendation = factory.SubFactory(RecommendationFactory)
    source = "manual"
    reason = "Discussed at the ward round."
    status = "active"
