from django.urls import path

from audit.views import PatientHistoryView

urlpatterns = [path("patients/<str:pk>/history/", PatientHistoryView.as_view(), name="patient-history")]
