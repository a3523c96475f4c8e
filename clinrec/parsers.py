"""The API's JSON parser: DRF's, with a bound on how deeply a body may nest.

Python's JSON decoder recurses once per level, so a body nested a thousand deep (a few kilobytes) used to end
in a RecursionError and a 500 on every JSON endpoint. No ClinRec resource nests more than a few levels, so a
deeper body is refused with a 400 that says so. The bound is the API_JSON_MAX_DEPTH setting.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def nesting_depth(value) -> int:
    """How many arrays and objects deep `value` goes (a scalar is 0), without recursion."""
    depth = 0
    level = [value]
    while level:
        containers = [item for item in level if isinstance(item, (dict, list))]
        if not containers:
            break
        depth += 1
        level = [child for item in containers for child in (item.values() if isinstance(item, dict) else item)]
    return depth


class DepthLimitedJSONParser(JSONParser):
    """JSONParser that refuses bodies nested deeper than `settings.API_JSON_MAX_DEPTH` with a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_JSON_MAX_DEPTH
        too_deep = ParseError(f"JSON parse error - the body is nested more than {limit} levels deep.")
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise too_deep from None
        if nesting_depth(data) > limit:
            raise too_deep
        return data
