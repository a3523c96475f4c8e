"""ClinRec URLs: the API under /api/v1/, its schema and docs, the admin, and the browsable API's login."""

from django.contrib import admin
from django.contrib.staticfiles.storage import staticfiles_storage
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from clinrec.health import HealthView
from interop import urls as interop_urls
from security.docs import RedocView, SwaggerUIView


class ApiRootView(APIView):
    """The entry point of the browsable API: links to every resource (any signed-in user; 401 otherwise)."""

    permission_classes = [IsAuthenticated]
    ENDPOINTS = {
        "patients": "patient-list",
        "procedures": "procedure-list",
        "patient-procedures": "patient-procedure-list",
        "recommendations": "recommendation-list",
        "patient-recommendations": "patient-recommendation-list",
        "events": "event-list",
        "analytics-recommendations": "analytics-recommendation-list",
        "health": "health",
        "token": "token",
        "docs": "swagger-ui",
    }

    @extend_schema(exclude=True)
    def get(self, request):
        return Response({name: reverse(route, request=request) for name, route in self.ENDPOINTS.items()})


api_v1 = [
    path("", ApiRootView.as_view(), name="api-root"),
    path("health/", HealthView.as_view(), name="health"),
    path("", include("security.urls")),
    path("", include("patients.urls")),
    path("", include("procedures.urls")),
    path("", include("recommendations.urls")),
    path("", include(interop_urls.api_urls)),  # interop: CDS feedback analytics
    path("", include("audit.urls")),  # audit: a patient's history
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SwaggerUIView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", RedocView.as_view(url_name="schema"), name="redoc"),
    path("api-auth/", include("rest_framework.urls")),
    # interop: the FHIR R4B server and the CDS Hooks service, at the paths the standards expect.
    path("fhir/", include(interop_urls.fhir_urls)),
    interop_urls.fhir_root_without_slash,
    path("", include(interop_urls.cds_urls)),
    path("admin/", admin.site.urls),
    # workspace: browsers ask every site for /favicon.ico; ours is served by the app (nothing from outside).
    path("favicon.ico", RedirectView.as_view(url=staticfiles_storage.url("security/favicon.svg")), name="favicon"),
]

admin.site.site_header = "ClinRec administration"
admin.site.site_title = "ClinRec"
admin.site.index_title = "Patients, procedures and recommendations"
admin.site.site_url = "/api/docs/"  # "View site": the API's documentation (there is no other front page)

handler400 = "clinrec.exceptions.bad_request"
handler404 = "clinrec.exceptions.page_not_found"
handler500 = "clinrec.exceptions.server_error"
