"""Read cache of the API: single objects and lists, fresh after every write.

Each cached response is stored under a key that embeds a *version token* per model it shows (a patient
procedure list with `expand` shows patients and procedures too). A write to any of those models replaces the
model's token, so every key built before the write is simply never asked for again; there is nothing to
delete and no race between a slow reader and a writer. Tokens are replaced as soon as a model is saved or
deleted (so the writer's own next read, even inside its transaction, is fresh) and again on commit (so a
read that raced the transaction cannot leave old data under the new token).

Only the serialized data is cached, after DRF has authenticated the request and checked its permissions,
so a cached response never skips authentication and is never served to a user with other rights.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable

from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save
from rest_framework.response import Response

logger = logging.getLogger(__name__)

CACHED_APPS = frozenset({"patients", "procedures", "recommendations"})


def _version_key(model: type[models.Model]) -> str:
    return f"api-version:{model._meta.label_lower}"


def _new_token() -> str:
    return uuid.uuid4().hex[:12]


def bump_versions(*model_classes: type[models.Model]) -> None:
    """Make every cached read that shows these models stale (for writes that bypass save(), e.g. update())."""
    tokens = {_version_key(model): _new_token() for model in model_classes}
    cache.set_many(tokens, timeout=None)

    def bump_again() -> None:
        cache.set_many({key: _new_token() for key in tokens}, timeout=None)

    transaction.on_commit(bump_again)


def _versions(model_classes: Iterable[type[models.Model]]) -> str | None:
    keys = [_version_key(model) for model in model_classes]
    found = cache.get_many(keys)
    missing = [key for key in keys if key not in found]
    if missing:
        for key in missing:
            cache.add(key, _new_token(), timeout=None)
        found = cache.get_many(keys)
        if any(key not in found for key in keys):
            return None  # the cache is unreachable: do not cache at all
    return "-".join(found[key] for key in keys)


def read_cache_key(scope: str, model_classes: Iterable[type[models.Model]], request) -> str | None:
    """The key for one read, or None when nothing should be cached."""
    versions = _versions(model_classes)
    if versions is None:
        return None
    query = sorted(request.query_params.lists())
    # Scheme and host are part of the key: the `next`/`previous` links of a cached page are absolute URLs.
    origin = f"{request.scheme}://{request.get_host()}"
    digest = hashlib.sha256(f"{origin}{request.path}?{query}".encode()).hexdigest()[:32]
    return f"api-read:{scope}:{versions}:{digest}"


class CachedReadMixin:
    """Viewset mixin caching `list` and `retrieve` data; `cache_models` names every model the output shows."""

    cache_models: tuple[type[models.Model], ...] = ()

    def list(self, request, *args, **kwargs):
        return self._cached_read(request, "list", super().list, *args, **kwargs)

    def retrieve(self, request, *args, **kwargs):
        return self._cached_read(request, "detail", super().retrieve, *args, **kwargs)

    def _cached_read(self, request, kind: str, read, *args, **kwargs):
        key = read_cache_key(f"{self.basename}-{kind}", self.cache_models or (self.queryset.model,), request)
        if key is not None:
            data = cache.get(key)
            if data is not None:
                return Response(data)
        response = read(request, *args, **kwargs)
        if key is not None and response.status_code == 200:
            cache.set(key, response.data, timeout=settings.CACHE_TTL_SECONDS)
        return response


def _on_model_change(sender, **kwargs) -> None:
    if sender._meta.app_label in CACHED_APPS:
        bump_versions(sender)


def connect_invalidation_signals() -> None:
    for model in apps.get_models():
        if model._meta.app_label in CACHED_APPS:
            post_save.connect(_on_model_change, sender=model, dispatch_uid=f"cache-save-{model._meta.label_lower}")
            post_delete.connect(_on_model_change, sender=model, dispatch_uid=f"cache-delete-{model._meta.label_lower}")
