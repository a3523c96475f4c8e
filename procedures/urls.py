from rest_framework.routers import SimpleRouter

from procedures.views import PatientProcedureViewSet, ProcedureViewSet

router = SimpleRouter()
router.register("procedures", ProcedureViewSet, basename="procedure")
router.register("patient-procedures", PatientProcedureViewSet, basename="patient-procedure")

urlpatterns = router.urls
