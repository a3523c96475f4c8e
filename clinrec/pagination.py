"""Pagination of every list: `limit` and `offset` (or its synonym `skip`), 50 by default, 500 at most."""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination


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
