"""The API's documentation pages, Swagger UI and Redoc, in the form the Content-Security-Policy allows.

drf-spectacular's own pages start Swagger UI and Redoc with inline scripts and styles, and Redoc loads Google web
fonts; these serve the same sidecar bundles with every script and stylesheet a file of this server.
"""

from __future__ import annotations

from csp.constants import SELF
from csp.decorators import csp_update
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView


class SwaggerUIView(SpectacularSwaggerSplitView):
    """Swagger UI; its start script is served by the same view (`?script`) instead of inline."""

    template_name = "security/swagger_ui.html"


# What Redoc needs beyond the site's policy: its search index runs in a web worker built from a blob: URL, and
# while its bundle loads (before it can be handed the nonce) it injects two fixed <style> elements, allowed by
# their hashes: the perfect-scrollbar stylesheet and an empty one. A new sidecar version may change the first;
# security/tests/test_csp_browser.py then reports the refused style with its new hash.
REDOC_POLICY = {
    "worker-src": [SELF, "blob:"],
    "style-src": [
        "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",  # perfect-scrollbar's .ps rules
        "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",  # an empty <style>
    ],
}


@method_decorator(csp_update(REDOC_POLICY), name="dispatch")
class RedocView(SpectacularRedocView):
    """Redoc, started by security/static/security/redoc-init.js with the response's CSP nonce."""

    template_name = "security/redoc.html"
