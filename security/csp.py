"""django-csp's middleware with the policy string built once, not on every response.

`csp.middleware.CSPMiddleware` rebuilds the header from the settings for every response (about 60 µs, a tenth
of a cached API read). For the usual response (no per-view policy, no nonce used, not exempt) the header only
depends on the settings, so it is built once per settings object and reused; any other response goes through
the library's own code, unchanged.
"""

from __future__ import annotations

import http.client

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as LibraryCSPMiddleware
from csp.utils import build_policy
from django.conf import settings

# What a view or decorator sets on its response to change or drop the policy (django-csp's own attributes).
PER_RESPONSE_ATTRIBUTES = tuple(
    f"_csp_{name}{suffix}" for name in ("exempt", "config", "update", "replace") for suffix in ("", "_ro")
)
DEBUG_EXEMPT_STATUSES = (http.client.INTERNAL_SERVER_ERROR, http.client.NOT_FOUND)


class CSPMiddleware(LibraryCSPMiddleware):
    """django-csp's middleware, with the settings' policy built once (see the module's docstring)."""

    _built: tuple | None = None  # (policy setting, report-only setting, header, report-only header)

    def _settings_policies(self) -> tuple[str, str]:
        enforced = getattr(settings, "CONTENT_SECURITY_POLICY", None)
        report_only = getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
        built = self._built
        if built is None or built[0] is not enforced or built[1] is not report_only:
            built = (enforced, report_only, build_policy(), build_policy(report_only=True))
            self._built = built
        return built[2], built[3]

    def process_response(self, request, response):
        usual = (
            getattr(request, "_csp_nonce", None) is None
            and not any(hasattr(response, name) for name in PER_RESPONSE_ATTRIBUTES)
            and HEADER not in response
            and HEADER_REPORT_ONLY not in response
            and not (settings.DEBUG and response.status_code in DEBUG_EXEMPT_STATUSES)
        )
        if not usual:
            return super().process_response(request, response)
        policy, policy_ro = self._settings_policies()
        for header, value, setting in (
            (HEADER, policy, "CONTENT_SECURITY_POLICY"),
            (HEADER_REPORT_ONLY, policy_ro, "CONTENT_SECURITY_POLICY_REPORT_ONLY"),
        ):
            prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES", None) or ()
            if value and not request.path_info.startswith(tuple(prefixes)):
                response[header] = value
        # As the library does: a nonce asked for after the header was written is an error, not a silent gap.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response
