"""Login lockout (django-axes): one limit per username and address, a higher one per address, and the answers.

Axes counts failed logins of the token endpoint, the browsable API's login and the admin's login (its
authentication backend refuses a locked-out client before the password is checked). Axes has one failure
limit for all its lockout parameters, so the two limits are:
- per username *and* address: axes itself (`AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]`,
  `AXES_FAILURE_LIMIT`): one person guessing at one account;
- per address, all usernames together: `LockoutHandler` below adds `AXES_IP_FAILURE_LIMIT`, counted from the
  same attempt records within the same cool-off, against password spraying; set higher so that one mistyping
  clinician never locks out a whole ward behind one address.
A success before a limit resets that username's count from that address (`AXES_RESET_ON_SUCCESS`).
"""

from __future__ import annotations

import math

from axes.attempts import get_cool_off_threshold
from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off, get_lockout_message
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.db.models import Sum
from django.http import HttpResponse, JsonResponse
from django.template.response import TemplateResponse


class LockoutHandler(AxesDatabaseHandler):
    """Axes' database handler plus the per-address limit (AXES_IP_FAILURE_LIMIT)."""

    def address_failures(self, request) -> int:
        attempts = AccessAttempt.objects.filter(ip_address=request.axes_ip_address)
        if settings.AXES_COOLOFF_TIME:
            attempts = attempts.filter(attempt_time__gte=get_cool_off_threshold(request))
        return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0

    def is_locked(self, request, credentials: dict | None = None) -> bool:
        if super().is_locked(request, credentials):
            return True
        return self.address_failures(request) >= settings.AXES_IP_FAILURE_LIMIT

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is None or getattr(request, "axes_locked_out", False):
            return
        if self.address_failures(request) >= settings.AXES_IP_FAILURE_LIMIT:
            request.axes_locked_out = True
            request.axes_credentials = credentials
            user_locked_out.send(
                "axes",
                request=request,
                username=(credentials or {}).get(settings.AXES_USERNAME_FORM_FIELD),
                ip_address=request.axes_ip_address,
            )


def retry_after_seconds(request) -> int:
    cool_off = get_cool_off(request)
    return math.ceil(cool_off.total_seconds()) if cool_off else 0


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """429: JSON `{"detail"}` under /api/, the lockout page elsewhere (the admin, the browsable API's login)."""
    message = str(get_lockout_message())
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=settings.AXES_HTTP_RESPONSE_CODE)
    else:
        context = {"message": message, "cooloff_minutes": settings.AXES_COOLOFF_MINUTES}
        response = TemplateResponse(request, "security/lockout.html", context, status=settings.AXES_HTTP_RESPONSE_CODE)
        response.render()
    if retry_after_seconds(request):
        response["Retry-After"] = str(retry_after_seconds(request))
    return response


class LockoutBackend(AxesStandaloneBackend):
    """Axes' backend, which refuses a locked-out client before the password is checked.

    An authentication with no request (a shell, a management command, the test client's `login()`) has no
    client address to count failures for: it is left to the next backend instead of being refused.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
