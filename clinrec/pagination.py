"""Pagination of every list: `limit` and `offset` (or its synonym `skip`), 50 by default, 500 at most."""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.utils.urls import remove_query_param


def _parse(request, name: str, *, minimum: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: [f"A whole number is required, not {raw!r}."]}) from None
    if value < minimum:
        raise ValidationError({name: [f"Must be at least {minimum}."]})
    return value


class LimitOffsetSkipPagination(LimitOffsetPagination):
    """DRF's limit/offset envelope `{count, next, previous, results}`, also accepting `skip` for `offset`.

    Malformed values are a 400 naming the parameter rather than a silent fallback; a limit above the
    maximum is capped at the maximum.
    """

    default_limit = 50
    max_limit = 500
    skip_query_param = "skip"

    def get_limit(self, request) -> int:
        limit = _parse(request, self.limit_query_param, minimum=1)
        return self.default_limit if limit is None else min(limit, self.max_limit)

    def get_offset(self, request) -> int:
        offset = _parse(request, self.offset_query_param, minimum=0)
        if offset is None:
            offset = _parse(request, self.skip_query_param, minimum=0)
        return offset or 0

    def _without_skip(self, url: str | None) -> str | None:
        # Links carry the position in `offset`. A `skip` copied from the request would take over wherever DRF
        # drops `offset` (the link to the first page), and that link would repeat the current page.
        return None if url is None else remove_query_param(url, self.skip_query_param)

    def get_next_link(self) -> str | None:
        return self._without_skip(super().get_next_link())

    def get_previous_link(self) -> str | None:
        return self._without_skip(super().get_previous_link())

    def get_html_context(self) -> dict:
        context = super().get_html_context()
        context["page_links"] = [
            link._replace(url=self._without_skip(link.url)) if link.url else link for link in context["page_links"]
        ]
        return context

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        parameters.append(
            {
                "name": self.skip_query_param,
                "required": False,
                "in": "query",
                "description": "Synonym of `offset`.",
                "schema": {"type": "integer", "minimum": 0},
            }
        )
        return parameters
