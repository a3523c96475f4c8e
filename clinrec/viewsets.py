"""The base of every resource viewset: cached reads, `?expand=`, an id check on updates, 409 on blocked deletes,
and safe concurrent writes (row locks, changed columns only, ETag / If-Match: see clinrec/concurrency.py)."""

from __future__ import annotations

from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from django.utils.functional import cached_property
from rest_framework import viewsets
from rest_framework.exceptions import ValidationError

from clinrec.cache import CachedReadMixin
from clinrec.concurrency import ConcurrencyMixin
from clinrec.exceptions import DeleteBlocked

# Any path segment reaches the view, so an id that cannot exist gets DRF's JSON 404, not Django's HTML page.
FHIR_LOOKUP_REGEX = r"[^/]+"


def no_such_id(value: str) -> bool:
    """True for a path id no database can hold (PostgreSQL refuses NUL in text): answer 404, not a 500."""
    return "\x00" in value


def parse_expand(raw: str | None, allowed: tuple[str, ...]) -> frozenset[str]:
    """The related objects to nest, from `?expand=a,b`; an unknown name is a 400 that lists the allowed ones."""
    if not raw:
        return frozenset()
    names = frozenset(part.strip() for part in raw.split(",") if part.strip())
    unknown = sorted(names - set(allowed))
    if unknown:
        raise ValidationError(
            {"expand": [f"Cannot expand {', '.join(unknown)}; allowed: {', '.join(allowed) or 'nothing'}."]}
        )
    return names


class ResourceViewSet(CachedReadMixin, ConcurrencyMixin, viewsets.ModelViewSet):
    """A ModelViewSet with the behaviour every ClinRec resource shares.

    - `expandable` names the foreign keys `?expand=` may replace by the nested object (the requested ones are
      fetched with `select_related`, so a page costs the same number of queries whatever its size);
    - PUT/PATCH with a body `id` other than the path's is a 400;
    - a delete blocked by PROTECT links is a 409 that names the blockers;
    - PUT/PATCH/DELETE lock the row and honour `If-Match`, updates write only the columns they change, and
      single reads and writes answer an `ETag` (ConcurrencyMixin).
    """

    expandable: tuple[str, ...] = ()

    @cached_property
    def expand(self) -> frozenset[str]:
        """The related objects this request asked to nest (parsed once per request)."""
        request = getattr(self, "request", None)
        return parse_expand(request.query_params.get("expand"), self.expandable) if request else frozenset()

    def get_queryset(self):
        queryset = super().get_queryset()
        # Join only what is nested: without `expand` the ids come from the row itself.
        return queryset.select_related(*self.expand) if self.expand else queryset

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "expand": self.expand}

    def get_object(self):
        if no_such_id(str(self.kwargs.get(self.lookup_url_kwarg or self.lookup_field, ""))):
            raise Http404("No such object.")
        return super().get_object()

    def update(self, request, *args, **kwargs):
        body_id = request.data.get("id") if hasattr(request.data, "get") else None
        if body_id is not None and str(body_id) != str(kwargs[self.lookup_url_kwarg or self.lookup_field]):
            raise ValidationError(
                {"id": [f"The id in the body ({body_id!r}) differs from the id in the path; ids cannot be changed."]}
            )
        return super().update(request, *args, **kwargs)

    def perform_destroy(self, instance):
        try:
            instance.delete()
        except (ProtectedError, RestrictedError) as error:
            raise DeleteBlocked(instance, error) from error
