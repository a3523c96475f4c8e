"""The browsable API's HTML renderer, fitted to the Content-Security-Policy."""

from __future__ import annotations

from rest_framework import renderers


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """DRF's browsable API with nothing inline that the CSP would refuse.

    - "Log out" submits its form with a button instead of an inline onclick (security/browsable_api.html);
    - no Pygments <style>: DRF adds it whenever Pygments is installed (it comes with pytest, so in development)
      for a `.highlight` class none of the browsable API's templates use;
    - a view may offer links to what relates to the resource shown (a patient: its procedures, its
      recommendations, evaluate) with `browsable_links(request) -> [(label, url)]`, listed under its description.
    """

    template = "security/browsable_api.html"

    def get_context(self, *args, **kwargs) -> dict:
        context = super().get_context(*args, **kwargs)
        context["code_style"] = None
        view = context.get("view")
        links = getattr(view, "browsable_links", None)
        context["related_links"] = links(context["request"]) if callable(links) else []
        return context
