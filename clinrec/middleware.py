"""Middleware for the API's URLs: a missing trailing slash is forgiven, an unknown path is a JSON 404, and input
that no view can use (a control character in the path or a query parameter, a Host not served) is refused
before it reaches one."""

from __future__ import annotations

import functools

from django.core.exceptions import DisallowedHost
from django.http import Http404, HttpResponseBadRequest, JsonResponse
from django.urls import Resolver404, URLResolver, get_resolver

from clinrec.exceptions import machine_error, refused_request
from clinrec.validators import describe, forbidden_character, printable

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
        path = request.path_info
        if path.startswith(API_PREFIX):
            try:
                request.get_host()
            except DisallowedHost as exc:
                status_code, message = refused_request(exc)
                return JsonResponse({"detail": message}, status=status_code)
        if forbidden_character(path) is not None:
            message = "No object has an id with a control character."
            response = machine_error(path, 404, message)
            if response is None:
                raise Http404(message)
            return response
        for name, values in request.GET.lists():
            character = next(filter(None, (forbidden_character(text) for text in [name, *values])), None)
            if character is not None:
                message = f"Control characters are not allowed: found {describe(character)}."
                if path.startswith(API_PREFIX):
                    return JsonResponse({name: [message]}, status=400)
                # Answered here rather than raised: a refused parameter is the client's mistake, not a traceback.
                response = machine_error(path, 400, f"Query parameter {printable(name)!r}: {message}")
                return response or HttpResponseBadRequest(f"Query parameter {printable(name)!r}: {message}")
        return self.get_response(request)


@functools.lru_cache(maxsize=4096)
def _routable(resolver: URLResolver, path: str) -> bool:
    """Whether a URL pattern matches `path` (Django's `is_valid_path`), remembered: resolving costs ~0.1 ms and
    Django resolves the path again to call the view. Keyed by the resolver, which Django replaces whenever the
    URLconf changes (`clear_url_caches`)."""
    try:
        resolver.resolve(path)
    except Resolver404:
        return False
    return True


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
            resolver = get_resolver(getattr(request, "urlconf", None))
            if not _routable(resolver, path):
                if path.endswith("/") or not _routable(resolver, f"{path}/"):
                    return JsonResponse({"detail": f"No endpoint at {request.path}."}, status=404)
                request.path_info = f"{path}/"
                request.path = f"{request.path}/"
        return self.get_response(request)
