"""Middleware for the API's URLs: a missing trailing slash is forgiven, an unknown path is a JSON 404, and input
that no view can use (a control character in the path or a query parameter, a Host not served) is refused
before it reaches one."""

from __future__ import annotations

from django.core.exceptions import BadRequest, DisallowedHost
from django.http import Http404, JsonResponse
from django.urls import is_valid_path

from clinrec.exceptions import refused_request
from clinrec.validators import describe, forbidden_character

API_PREFIX = "/api/"


class RefuseUnusableInputMiddleware:
    """Refuse a control character in the path (404: no object has such an id) or in a query parameter (400
    naming the parameter), on the API and the admin alike; under /api/ also a bad Host, as JSON.

    Ids, filters, search terms and ordering never contain control characters, and PostgreSQL cannot even
    receive a NUL: refusing them here keeps every view, filter and admin page from meeting one. It runs first,
    so Django's own Host check (whose page is HTML, and with DEBUG on a debug page) never sees /api/ traffic.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        api = request.path_info.startswith(API_PREFIX)
        if api:
            try:
                request.get_host()
            except DisallowedHost as exc:
                status_code, message = refused_request(exc)
                return JsonResponse({"detail": message}, status=status_code)
        if forbidden_character(request.path_info) is not None:
            if api:
                return JsonResponse({"detail": "No object has an id with a control character."}, status=404)
            raise Http404("No object has an id with a control character.")
        for name, values in request.GET.lists():
            character = next(filter(None, (forbidden_character(text) for text in [name, *values])), None)
            if character is not None:
                message = f"Control characters are not allowed: found {describe(character)}."
                if api:
                    return JsonResponse({name: [message]}, status=400)
                raise BadRequest(f"{name}: {message}")
        return self.get_response(request)


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
