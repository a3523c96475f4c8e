"""Concurrent writes to one resource: no lost update, and optimistic concurrency with `ETag` / `If-Match`.

Two mechanisms, shared by every ResourceViewSet:

- *Pessimistic, always on.* PUT, PATCH and DELETE lock the row (`SELECT ... FOR [NO KEY] UPDATE`) before
  reading it, and an update writes only the columns it changes (plus `auto_now` timestamps). Two clients that PATCH
  different fields of one record at once therefore both keep their change, and whatever is derived from
  stored values (the BMI) is computed from the row as it is under the lock. SQLite has no row locks; its
  IMMEDIATE transactions (clinrec/settings.py) already let one writer in at a time.
- *Optimistic, for clients that edit a whole record* (Microsoft's REST API guidelines): a GET of one resource
  answers a strong `ETag` derived from the representation itself (a hash of its canonical JSON), so it is the
  same whether the read cache or the database served it; writes answer the new one. `If-Match` on PUT,
  PATCH or DELETE is compared under the row lock with the ETag of the current representation: a mismatch is
  412 and nothing is written. `REQUIRE_IF_MATCH` makes the header mandatory (428 without it).
  `If-None-Match` on a GET answers 304 while the representation is unchanged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from django.conf import settings
from django.db import models, transaction
from django.utils.http import parse_etags
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

ModelT = TypeVar("ModelT", bound=models.Model)

# The methods that change one existing resource: they lock its row and honour If-Match.
CONDITIONAL_WRITE_METHODS = frozenset({"PUT", "PATCH", "DELETE"})
# The responses that carry the ETag of the representation in their body: the action and its success status.
ETAG_STATUS_BY_ACTION = {"retrieve": 200, "update": 200, "partial_update": 200, "create": 201}


class PreconditionFailed(exceptions.APIException):
    """412: `If-Match` names a version other than the current one; nothing was written."""

    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = (
        "The resource has changed since you read it (its ETag no longer matches If-Match); nothing was written. "
        "Read it again (GET), apply your change to the current version and retry with its ETag."
    )
    default_code = "precondition_failed"


class PreconditionRequired(exceptions.APIException):
    """428: this server requires `If-Match` on PUT, PATCH and DELETE, and the request had none."""

    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_detail = (
        "This server requires an If-Match header on PUT, PATCH and DELETE: send the ETag of the version you "
        "read (GET the resource first), or * to write whatever the current version is."
    )
    default_code = "precondition_required"


def representation_etag(data: Any) -> str:
    """A strong ETag for a serialized representation: a hash of its canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(data, cls=JSONEncoder, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f'"{hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()}"'


def etag_matches(header: str, etag: str, *, weak: bool = False) -> bool:
    """Whether an If-Match (strong comparison) or If-None-Match (`weak=True`) header value names `etag`."""
    candidates = parse_etags(header)
    if "*" in candidates:
        return True
    if weak:
        return any(candidate.removeprefix("W/") == etag for candidate in candidates)
    return etag in candidates  # a weak validator never matches strongly


def assign_changes(instance: models.Model, data: Mapping[str, Any]) -> list[str]:
    """Set `data` on `instance` and return the names of the concrete fields whose value this changed."""
    fields = [
        field
        for field in instance._meta.concrete_fields
        if not field.primary_key and (field.name in data or field.attname in data)
    ]
    before = {field.attname: getattr(instance, field.attname) for field in fields}
    for name, value in data.items():
        setattr(instance, name, value)
    return [field.name for field in fields if getattr(instance, field.attname) != before[field.attname]]


def save_changes(instance: models.Model, changed: Iterable[str]) -> None:
    """Write only the `changed` columns (and the `auto_now` timestamps with them); nothing when none changed.

    A full save() would also write every column this request did not touch, with the values read when it
    started: another request's change to them, committed in between, would be lost.
    """
    changed = list(changed)
    if not changed:
        return
    timestamps = [field.name for field in instance._meta.concrete_fields if getattr(field, "auto_now", False)]
    instance.save(update_fields=[*changed, *(name for name in timestamps if name not in changed)])


@transaction.atomic
def update_instance(*, instance: ModelT, data: Mapping[str, Any]) -> ModelT:
    """Apply validated `data` to a row the caller has locked, writing only the columns it changes."""
    save_changes(instance, assign_changes(instance, data))
    return instance


class ConcurrencyMixin:
    """Viewset mixin: row locks and changed-columns-only updates, `ETag` on reads and writes, `If-Match`."""

    @property
    def _http_method(self) -> str:
        # The method the client sent: DRF's OPTIONS metadata asks get_object() under a clone of the request
        # that claims PUT, and an OPTIONS request runs outside any transaction (it must not take a row lock).
        return getattr(self.request, "_request", self.request).method

    def get_queryset(self):
        queryset = super().get_queryset()
        if self._http_method in CONDITIONAL_WRITE_METHODS:
            # Only the resource's own row, not the rows `?expand=` joins in. An update changes no key, so it
            # takes PostgreSQL's NO KEY lock (as its UPDATE would): new links to the row need not wait for it.
            return queryset.select_for_update(of=("self",), no_key=self.request.method != "DELETE")
        return queryset

    def get_object(self):
        conditional = self._http_method in CONDITIONAL_WRITE_METHODS
        if_match = self.request.headers.get("If-Match", "").strip() or None  # a blank header counts as none
        if conditional and if_match is None and settings.REQUIRE_IF_MATCH:
            raise PreconditionRequired()
        instance = super().get_object()
        # Compared under the row lock: no other write can slip in between this check and ours.
        if conditional and if_match is not None and not self._current_version_matches(instance, if_match):
            raise PreconditionFailed()
        return instance

    def _current_version_matches(self, instance: models.Model, if_match: str) -> bool:
        if parse_etags(if_match) == ["*"]:
            return True  # any version of an existing resource; get_object has found it
        return etag_matches(if_match, representation_etag(self.get_serializer(instance).data))

    # The lock, the If-Match check and the write belong to one transaction even without ATOMIC_REQUESTS
    # (inside it, savepoint=False adds no query).
    def update(self, request, *args, **kwargs):
        with transaction.atomic(savepoint=False):
            return super().update(request, *args, **kwargs)

    def destroy(self, request, *args, **kwargs):
        with transaction.atomic(savepoint=False):
            return super().destroy(request, *args, **kwargs)

    def perform_update(self, serializer):
        serializer.instance = update_instance(instance=serializer.instance, data=serializer.validated_data)

    def finalize_response(self, request: Request, response, *args, **kwargs):
        if (
            isinstance(response, Response)
            and isinstance(response.data, Mapping)
            and ETAG_STATUS_BY_ACTION.get(getattr(self, "action", None)) == response.status_code
        ):
            # A cached read brings the ETag it was stored with (clinrec.cache): the same hash, not computed again.
            etag = getattr(response, "representation_etag", None) or representation_etag(response.data)
            if_none_match = request.headers.get("If-None-Match")
            if request.method in ("GET", "HEAD") and if_none_match and etag_matches(if_none_match, etag, weak=True):
                response = Response(status=status.HTTP_304_NOT_MODIFIED)
            response["ETag"] = etag
        return super().finalize_response(request, response, *args, **kwargs)
