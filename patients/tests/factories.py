"""Factories for patients."""

import datetime

import factory

from patients.models import Patient, Sex


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    id = factory.Sequence(lambda n: f"pat-{n}")
    name = factory.Faker("name")
    birth_date = datetime.date(1980, 6, 15)
    sex = Sex.FEMALE
    height_cm = 170.0
    weight_kg = 70.0
    bmi = 24.2
    chronic_pain = False
