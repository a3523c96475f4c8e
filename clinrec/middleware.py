"""Middleware for the API's URLs: a missing trailing slash is forgiven, an unknown path is a JSON 404."""

from __future__ import annotations

from django.http import JsonResponse
from django.urls import is_valid_path

API_PREFIX = "/api/"


class ApiPathMiddleware:
    """Serve `/api/v1/patients` as `/api/v1/patients/`, and answer an unknown `/api/…` path with JSON.

    Django's APPEND_SLASH would redirect instead, which loses the body of a POST, PUT or PATCH (and with
    DEBUG on refuses with an HTML 500); integrators' clients should not have to care about the slash.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path.startswith(API_PREFIX):
            urlconf = getattr(request, "urlconf", None)
            if not is_valid_path(path, urlconf):
                if path.endswith("/") or not is_valid_path(f"{path}/", urlconf):
                    return JsonResponse({"detail": f"No endpoint at {request.path}."}, status=404)
                request.path_info = f"{path}/"
                request.path = f"{request.path}/"
        return self.get_response(request)
