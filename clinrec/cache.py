"""Read cache of the API: single objects and lists, never older than an acknowledged write.

Each cached response is stored under a key that embeds a *version token* per model it shows (a patient
procedure list with `expand` shows patients and procedures too). The tokens live in the database
(`clinrec.models.CacheVersion`), not in Redis: a read fetches the tokens of its models in one indexed query,
then does one Redis GET for the data under the key they make. A write replaces the token of every model it
touched with one upsert right after its transaction commits (`transaction.on_commit`; with ATOMIC_REQUESTS
the response is sent only after that callback ran), so every read that follows an acknowledged write asks for
a key nobody has filled yet. Redis thus holds only data: whatever it returns after an outage, a hang, a
restart from an old dump, a failover or a partition from this process was stored under the current tokens,
or is never asked for again. A reader that races a writer (tokens read before the bump, data read before or
after the commit) stores its data under the old token, which nobody asks for once the new one is in place.

Inside a transaction that has written a model, reads of that model add a token of the transaction's own
(never seen outside it), so the writer reads its own writes before the commit too.

Invalidation needs no list: post_save, post_delete and m2m_changed of every model a cached read shows (the
`cache_models` of every `CachedReadMixin` view, found through the URLconf) replace its token, so a model a new
cached read shows is covered. Writes of the models no cached read shows (events, deliveries, notifications,
daily counts, run records...) replace nothing: they cost the event worker no upsert, and a key never embeds
their tokens; a read that would (one not declared through the mixin) is not cached at all. Writes
that bypass signals (`QuerySet.update()`, `bulk_create()`) call `bump_versions` themselves. `migrate` (and
`flush`) replace every token, so a deploy never serves responses shaped by the previous code. After a restore
of the database from a backup, clear the cache (the backup brings old tokens back).

Cost: no database query for a cached read on SQLite, one small query per request elsewhere, and one upsert
per writing transaction. Each connection keeps the last tokens it read (every row, the table is small) with a
stamp, and reads them again only when the stamp moved: on SQLite the stamp is `PRAGMA data_version`, which
changes as soon as any other connection has committed anything (it is read first, in its own read
transaction, so tokens read after it are never older than it says; a write by this connection clears the
memo itself, since data_version ignores its own connection); on other databases the stamp is the request,
so tokens are read once per request. Either way no token older than one replaced before the request began is
ever used, so the guarantee above holds whatever Redis does, and a worker cut off from Redis still sees the
others' writes.

The tokens also cover the auth models (users, groups, permissions and their links), so that
`security.authentication` can keep a per-user snapshot (the user and its permissions) and drop it as soon as
any of them changed: a deactivated, deleted or re-roled user loses access on the next request.

Only the serialized data is cached, after DRF has authenticated the request and checked its permissions, so
a cached response never skips authentication and is never served to a user with other rights. A Redis that
fails costs one short timeout and is then skipped for a while (clinrec.redis_breaker).

Each process also keeps the entries it used last in memory (`local_reads`, READ_CACHE_LOCAL_ENTRIES): same
keys, so the same freshness, and no Redis round trip for a read this process made recently. The whole final
response of such a read is kept too (`local_responses`), for clinrec.fast_reads, which serves it again before
the middleware and DRF once it has made the same checks (see that module).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import DEFAULT_DB_ALIAS, connections, models, router, transaction
from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save
from django.urls import get_resolver
from rest_framework.permissions import BasePermission, DjangoModelPermissions
from rest_framework.response import Response

from clinrec.concurrency import representation_etag
from clinrec.models import CacheVersion

logger = logging.getLogger(__name__)


def _new_token() -> str:
    return uuid.uuid4().hex[:16]


def model_label(model: type[models.Model]) -> str:
    """The token's name: the concrete model's label, so a proxy model shares the table's token."""
    return model._meta.concrete_model._meta.label_lower


@functools.cache
def cached_models() -> frozenset[type[models.Model]]:
    """The concrete models some cached read shows: each `CachedReadMixin` view's `cache_models` (or the model of
    its queryset). The URLconf is loaded first, so that a process serving no request (the worker) knows them too."""
    get_resolver().url_patterns  # noqa: B018 - imports every routed view
    shown: set[type[models.Model]] = set()
    views = [CachedReadMixin]
    while views:
        view = views.pop()
        views.extend(view.__subclasses__())
        queryset = getattr(view, "queryset", None)
        models_shown = view.cache_models or ((queryset.model,) if queryset is not None else ())
        shown.update(model._meta.concrete_model for model in models_shown)
    return frozenset(shown)


def is_cached_model(model: type[models.Model]) -> bool:
    """True for the models whose writes invalidate cached reads: those some cached read shows."""
    return model._meta.concrete_model in cached_models()


@functools.cache
def is_auth_model(model: type[models.Model]) -> bool:
    """Users, groups, permissions and the tables linking them: what a user's role snapshot is made of."""
    return model._meta.app_label == "auth" or model._meta.concrete_model is get_user_model()


def auth_models() -> list[type[models.Model]]:
    return [model for model in apps.get_models(include_auto_created=True) if is_auth_model(model)]


def tracked_models() -> list[type[models.Model]]:
    """Every model with a token: those cached reads show, and the auth models behind role snapshots."""
    return [model for model in apps.get_models(include_auto_created=True) if _tracked(model)]


# --- writes: replace tokens ---------------------------------------------------------------------------------


def _replace_tokens(labels: Iterable[str]) -> None:
    """One upsert for all labels (sorted, so two concurrent writers lock the rows in the same order)."""
    rows = [CacheVersion(label=label, token=_new_token()) for label in sorted(set(labels))]
    if rows:
        using = router.db_for_write(CacheVersion)
        CacheVersion.objects.using(using).bulk_create(
            rows, update_conflicts=True, unique_fields=["label"], update_fields=["token"]
        )
        forget_tokens(using)


class _PendingBump:
    """The on-commit callback of one transaction: the models it wrote, each with a token of the transaction's own
    until the commit replaces the shared one."""

    def __init__(self) -> None:
        self.own_tokens: dict[str, str] = {}

    def add(self, labels: Iterable[str]) -> None:
        for label in labels:
            self.own_tokens[label] = _new_token()

    def __call__(self) -> None:
        _replace_tokens(self.own_tokens)


def _pending_bump(using: str) -> _PendingBump | None:
    # Django keeps the on-commit callbacks of the open transaction here and drops those of a rolled-back
    # savepoint, so this is exactly "what this transaction has written and may still commit".
    for entry in connections[using].run_on_commit:
        if isinstance(entry[1], _PendingBump):
            return entry[1]
    return None


def bump_versions(*model_classes: type[models.Model], using: str | None = None) -> None:
    """Make every cached read that shows these models stale once the current transaction commits (at once in
    autocommit). Called by the signals; call it yourself after writes that bypass them (update(), bulk_create())."""
    labels = {model_label(model) for model in model_classes if _tracked(model)}  # no token: nothing to replace
    using = using or DEFAULT_DB_ALIAS
    if not labels:
        return
    if not connections[using].in_atomic_block:
        _replace_tokens(labels)
        return
    pending = _pending_bump(using)
    if pending is None:
        pending = _PendingBump()
        # Not robust: if the tokens cannot be replaced the request fails, so a write is never acknowledged
        # while reads could still show what it replaced.
        transaction.on_commit(pending, using=using)
    pending.add(labels)


def replace_all_tokens(*, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """post_migrate (also sent by flush): new tokens for every model, so nothing cached before is served."""
    if CacheVersion._meta.db_table not in connections[using].introspection.table_names():
        return  # a partial migrate that has not created the table yet
    _replace_tokens(model_label(model) for model in tracked_models())


# --- reads: the key of one read -----------------------------------------------------------------------------


class _RequestStamp(threading.local):
    """Which request this thread is serving (None between requests): the stamp of the memo off SQLite."""

    generation = 0
    current: int | None = None


_request = _RequestStamp()


def _request_started(**kwargs) -> None:
    _request.generation += 1
    _request.current = _request.generation


def _request_finished(**kwargs) -> None:
    _request.current = None


def _stamp(connection) -> tuple | None:
    """A value that differs whenever tokens may have changed since it was last taken; None: read them now."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        raw = connection.connection
        # Not a query on any table: the change counter of the database file (every other connection's commit
        # moves it). Read on the driver's connection, in its own read transaction, before the tokens.
        return ("sqlite", raw, raw.execute("PRAGMA data_version").fetchone()[0])
    return None if _request.current is None else ("request", _request.current)


def token_queries_per_request() -> int:
    """What reading the tokens costs a request whose connection already remembers them: nothing on SQLite,
    one query elsewhere (query budgets of the tests count it)."""
    return 0 if connections[router.db_for_read(CacheVersion)].vendor == "sqlite" else 1


def forget_tokens(using: str | None = None) -> None:
    """Drop the tokens this thread's connection remembers (after it replaced some, or restored rows)."""
    for alias in [using] if using else list(connections):
        connections[alias].__dict__.pop("_clinrec_tokens", None)


def current_tokens(labels: Iterable[str]) -> dict[str, str]:
    """The committed tokens of these models, never older than one replaced before this request began.

    Remembered per connection with a stamp (see the module's docstring): no query while the stamp holds.
    """
    connection = connections[router.db_for_read(CacheVersion)]
    memo = connection.__dict__.get("_clinrec_tokens")
    if memo is not None and _request.current is not None and memo[2] == _request.current:
        return {label: memo[1][label] for label in labels if label in memo[1]}  # checked in this very request
    stamp = _stamp(connection)
    if stamp is None or memo is None or memo[0] != stamp:
        memo = (stamp, dict(CacheVersion.objects.values_list("label", "token")), None)
    if stamp is not None:
        connection.__dict__["_clinrec_tokens"] = (memo[0], memo[1], _request.current)
    tokens = memo[1]
    return {label: tokens[label] for label in labels if label in tokens}


def versions_of(model_classes: Iterable[type[models.Model]]) -> str | None:
    """The versions of these models as this request sees them (a transaction's own writes included), or None
    when a model has no token yet. Equal versions: nothing of these models changed in between."""
    if not all(_tracked(model) for model in model_classes):
        return None  # its writes replace no token: never cached (a stale row of a former token is never used)
    labels = sorted({model_label(model) for model in model_classes})
    tokens = current_tokens(labels)
    if len(tokens) != len(labels):
        return None
    pending = _pending_bump(router.db_for_read(CacheVersion))
    own = pending.own_tokens if pending else {}
    return ",".join(f"{label}={tokens[label]}{own.get(label, '')}" for label in labels)


def read_cache_key(scope: str, model_classes: Iterable[type[models.Model]], request) -> str | None:
    """The key for one read, or None when it must not be cached (a model without a token yet)."""
    versions = versions_of(model_classes)
    return None if versions is None else _key_for_versions(scope, versions, request)


def _key_for_versions(scope: str, versions: str, request) -> str:
    query = sorted(request.query_params.lists())
    # Scheme and host are part of the key: the `next`/`previous` links of a cached page are absolute URLs.
    origin = f"{request.scheme}://{request.get_host()}"
    # "2": the entry's format (data and ETag); entries of another format are never asked for.
    digest = hashlib.sha256(f"2|{versions}|{origin}{request.path}?{query}".encode()).hexdigest()[:40]
    return f"api-read:{scope}:{digest}"


@dataclass(frozen=True)
class FastReadTicket:
    """What the view says, on the normal path, about serving its response again: the models it shows with their
    versions, the authenticator that accepted the request and the permissions that were required."""

    models: tuple[type[models.Model], ...]
    versions: str
    authenticator: type
    permissions: tuple[str, ...]


class LocalReads:
    """This process's front of the read cache: the entries it last used, by key, kept in memory (LRU-bounded).

    A key embeds the committed version tokens of every model its data shows, and the tokens are read from the
    database on every request (see the module's docstring), so an entry found here is exactly as fresh as one
    found in Redis: a write makes every process ask for new keys. Serving it costs no Redis round trip.
    """

    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: str, entry: tuple) -> None:
        size = settings.READ_CACHE_LOCAL_ENTRIES
        if size <= 0:
            return
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


local_reads = LocalReads()
local_responses = LocalReads()  # whole responses of cached reads (clinrec.fast_reads)


def clear_read_cache() -> None:
    """Empty the shared cache and this process's memory of it (other processes keep theirs: restart them)."""
    cache.clear()
    local_reads.clear()
    local_responses.clear()


def model_permissions_required(view, request) -> tuple[str, ...] | None:
    """The permissions the view's permission classes require of this read, when they can be stated in advance
    (only DjangoModelPermissions and subclasses that do not change its checks), else None."""
    if view.get_throttles() or getattr(view, "_ignore_model_permissions", False):
        return None
    required: list[str] = []
    for permission in view.get_permissions():
        kind = type(permission)
        if not (
            isinstance(permission, DjangoModelPermissions)
            and kind.has_permission is DjangoModelPermissions.has_permission
            and kind.has_object_permission is BasePermission.has_object_permission
            and permission.authenticated_users_only
        ):
            return None
        model = permission._queryset(view).model
        required += permission.get_required_permissions(request.method, model)
    return tuple(required)


class CachedReadMixin:
    """Viewset mixin caching `list` and `retrieve` data; `cache_models` names every model the output shows.

    An entry is the serialized data with its ETag (computed once, when it is stored), looked up first in this
    process's memory (`local_reads`), then in the shared cache.
    """

    cache_models: tuple[type[models.Model], ...] = ()

    def list(self, request, *args, **kwargs):
        return self._cached_read(request, "list", super().list, *args, **kwargs)

    def retrieve(self, request, *args, **kwargs):
        return self._cached_read(request, "detail", super().retrieve, *args, **kwargs)

    def _cached_read(self, request, kind: str, read, *args, **kwargs):
        shown = self.cache_models or (self.queryset.model,)
        versions = versions_of(shown)
        key = None if versions is None else _key_for_versions(f"{self.basename}-{kind}", versions, request)
        if key is not None:
            self._offer_fast_read(request, shown, versions)
            entry = local_reads.get(key)
            if entry is None:
                entry = cache.get(key)
                if isinstance(entry, tuple):
                    local_reads.put(key, entry)
            if isinstance(entry, tuple):
                data, etag = entry
                response = Response(data)
                response.representation_etag = etag
                return response
        response = read(request, *args, **kwargs)
        if key is not None and response.status_code == 200:
            etag = representation_etag(response.data) if kind == "detail" else None
            response.representation_etag = etag
            entry = (response.data, etag)
            cache.set(key, entry, timeout=settings.CACHE_TTL_SECONDS)
            local_reads.put(key, entry)
        return response

    def _offer_fast_read(self, request, shown, versions: str) -> None:
        """Tell clinrec.fast_reads this response may be served again whole, and on which conditions."""
        authenticators = self.get_authenticators()
        if not authenticators or type(request.successful_authenticator) is not type(authenticators[0]):
            return  # only what the first authenticator accepted is checked the same way again
        permissions = model_permissions_required(self, request)
        if permissions is not None:
            request._request.clinrec_fast_read = FastReadTicket(
                models=tuple(shown),
                versions=versions,
                authenticator=type(authenticators[0]),
                permissions=permissions,
            )


# --- wiring -------------------------------------------------------------------------------------------------


def _tracked(model: type[models.Model]) -> bool:
    return is_cached_model(model) or is_auth_model(model)


def _on_save_or_delete(sender, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    if sender is CacheVersion:  # rows written by hand or restored (loaddata): what this connection knows is old
        forget_tokens(using)
    elif _tracked(sender):
        bump_versions(sender, using=using)


def _on_m2m_changed(sender, instance, model, action: str, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    if action in {"post_add", "post_remove", "post_clear"}:
        changed = [m for m in (sender, type(instance), model) if m is not None and _tracked(m)]
        bump_versions(*changed, using=using)


def connect_invalidation_signals() -> None:
    """Receive the write signals of every model (filtered by `_tracked`), and migrate's."""
    post_save.connect(_on_save_or_delete, dispatch_uid="clinrec-cache-save")
    post_delete.connect(_on_save_or_delete, dispatch_uid="clinrec-cache-delete")
    m2m_changed.connect(_on_m2m_changed, dispatch_uid="clinrec-cache-m2m")
    request_started.connect(_request_started, dispatch_uid="clinrec-cache-request-started")
    request_finished.connect(_request_finished, dispatch_uid="clinrec-cache-request-finished")
    post_migrate.connect(
        replace_all_tokens, sender=apps.get_app_config("clinrec"), dispatch_uid="clinrec-cache-migrate"
    )
