"""Cached API reads served whole, before the rest of the middleware and Django REST framework run.

A cached read (clinrec.cache) still passes through a dozen middleware and DRF's dispatch, which cost several
times the read itself. This middleware, second in MIDDLEWARE (after the one refusing unusable input), keeps in
this process's memory the final response (status, every header, body) of a successful cached read, and serves
it again to a request that asks the same thing, once it has made exactly the checks the normal path would:

- the request is a plain GET of the API with a Bearer token: no cookie, no `Origin`, no conditional header (the
  normal path handles CORS, sessions and 304s);
- the same URL (scheme, host, path and query) and the same `Accept` header;
- the version tokens of every model the response shows are still those it was made under (clinrec.cache: read
  from the database, so a write by any process makes the entry unusable at once);
- the view's first authenticator (the one that authenticated the stored request) accepts the token now, so
  an expired token, or a user deactivated, deleted or changed since, goes to the normal path and its 401;
- the user now has every permission the view's permission classes required (DjangoModelPermissions and its
  subclasses, the only ones whose requirement can be stated in advance), or the normal path answers 403.

Which views may be served here is decided by the view itself on the normal path (`FastReadTicket`, attached
by clinrec.cache.CachedReadMixin): no list to maintain. A response is stored only when it is JSON, 200 and sets
no cookie, so nothing user-specific (the browsable API's HTML, a session) is ever replayed. The replay is the
stored response byte for byte, headers in their order included.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from clinrec.cache import FastReadTicket, local_responses, versions_of

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
# Request headers with which the normal path may answer differently than to the request whose response is kept.
BYPASS_HEADERS = (
    "HTTP_COOKIE",
    "HTTP_ORIGIN",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_MATCH",
    "HTTP_IF_UNMODIFIED_SINCE",
    "HTTP_RANGE",
)


@dataclass(frozen=True)
class _Kept:
    ticket: FastReadTicket
    status: int
    headers: tuple[tuple[str, str], ...]
    content: bytes


def _request_key(request: HttpRequest) -> tuple | None:
    """What the request asks, or None when it must take the normal path."""
    if request.method != "GET" or not request.path.startswith(API_PREFIX):
        return None
    meta = request.META
    if not meta.get("HTTP_AUTHORIZATION", "").startswith("Bearer ") or any(meta.get(name) for name in BYPASS_HEADERS):
        return None
    return (request.scheme, request.get_host(), request.get_full_path(), meta.get("HTTP_ACCEPT", ""))


def _serve(request: HttpRequest, key: tuple) -> HttpResponse | None:
    kept: _Kept | None = local_responses.get(key)
    if kept is None:
        return None
    ticket = kept.ticket
    if versions_of(ticket.models) != ticket.versions:
        return None  # something it shows has changed since
    authenticated = ticket.authenticator().authenticate(request)  # raises for a bad token: normal path then
    if authenticated is None:
        return None
    user = authenticated[0]
    if not (user.is_authenticated and user.has_perms(ticket.permissions)):
        return None
    return HttpResponse(kept.content, status=kept.status, headers=dict(kept.headers))


def _keep(request: HttpRequest, key: tuple, response: HttpResponse) -> None:
    ticket = getattr(request, "clinrec_fast_read", None)
    if (
        ticket is None
        or response.status_code != 200
        or response.streaming
        or response.cookies
        or not response.get("Content-Type", "").startswith("application/json")
    ):
        return
    local_responses.put(key, _Kept(ticket, response.status_code, tuple(response.items()), response.content))


class FastReadMiddleware:
    """Serve a kept response to a request that may have it (see the module's docstring); keep new ones."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        key = _request_key(request) if settings.READ_CACHE_LOCAL_ENTRIES > 0 else None
        if key is not None:
            try:
                served = _serve(request, key)
            except Exception as error:  # noqa: BLE001 - any doubt (a refused token, a lost database): the normal path decides
                logger.debug("Fast read not served: %r", error)
                served = None
            if served is not None:
                return served
        response = self.get_response(request)
        if key is not None:
            _keep(request, key, response)
        return response
