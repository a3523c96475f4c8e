"""Factories for the procedure catalogue and patient procedures."""

import datetime

import factory
from django.utils import timezone

from patients.tests.factories import PatientFactory
from procedures.models import PatientProcedure, Procedure


class ProcedureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Procedure

    id = factory.Sequence(lambda n: f"proc-{n}")
    name = factory.Sequence(lambda n: f"Procedure {n}")
    department = "orthopaedics"
    is_surgery = True


class PatientProcedureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PatientProcedure

    patient = factory.SubFactory(PatientFactory)
    procedure = factory.SubFactory(ProcedureFactory)
    performed_at = factory.LazyFunction(lambda: timezone.now() - datetime.timedelta(days=10))
    report = "Uneventful."
