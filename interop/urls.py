"""URLs of the FHIR server (`/fhir/`) and the CDS Hooks service (`/cds-services`)."""

from django.urls import path, re_path

from interop.cds import views as cds
from interop.fhir import views as fhir

fhir_urls = [
    path("", fhir.TransactionView.as_view(), name="fhir-transaction"),
    path("metadata", fhir.CapabilityStatementView.as_view(), name="fhir-metadata"),
    path("Patient/<str:pk>/$everything", fhir.PatientEverythingView.as_view(), name="fhir-patient-everything"),
    path("Patient/<str:pk>", fhir.PatientReadView.as_view(), name="fhir-patient"),
    path("ServiceRequest", fhir.ServiceRequestSearchView.as_view(), name="fhir-service-request-search"),
    path("Procedure", fhir.ProcedureSearchView.as_view(), name="fhir-procedure-search"),
    path("Observation", fhir.ObservationSearchView.as_view(), name="fhir-observation-search"),
    re_path(r"^.*$", fhir.FhirNotFoundView.as_view(schema=None), name="fhir-not-found"),
]

cds_urls = [
    path("cds-services", cds.DiscoveryView.as_view(), name="cds-discovery"),
    path("cds-services/<str:service_id>", cds.ServiceView.as_view(), name="cds-service"),
    path("cds-services/<str:service_id>/feedback", cds.FeedbackView.as_view(), name="cds-feedback"),
    re_path(r"^cds-services/.*$", cds.CdsNotFoundView.as_view(schema=None), name="cds-not-found"),
]

api_urls = [
    path("analytics/cds-feedback/", cds.CdsFeedbackAnalyticsView.as_view(), name="analytics-cds-feedback"),
]

# `POST /fhir` (no slash) is the same transaction; Django would otherwise redirect and lose the body.
fhir_root_without_slash = path("fhir", fhir.TransactionView.as_view(schema=None), name="fhir-transaction-no-slash")
