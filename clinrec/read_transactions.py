"""Reads outside a transaction, writes inside one: ATOMIC_REQUESTS for unsafe methods only.

With `ATOMIC_REQUESTS` Django wraps every view in a transaction, GETs included; on SQLite (IMMEDIATE mode)
that takes the database's write lock for every read, and the workers queue on it. This middleware, last in
MIDDLEWARE, calls the view itself for GET, HEAD and OPTIONS (a view middleware that returns a response
bypasses Django's atomic wrapper), so a read runs in autocommit; every other method goes through the normal
path and stays in one transaction that a failure rolls back whole, including DRF's handled errors (DRF marks
the request's transaction for rollback when ATOMIC_REQUESTS is on). A read that writes (e.g. creating the
first rule-set version) opens its own transaction where it writes.
"""

from __future__ import annotations

from django.db import connection, transaction

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ReadsOutsideTransactionMiddleware:
    """Serve safe methods without the request transaction of ATOMIC_REQUESTS."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method not in SAFE_METHODS:
            return None  # Django wraps the view in the request's transaction
        if connection.in_atomic_block:
            # Called inside a transaction (a test's, or a caller's): a savepoint, as ATOMIC_REQUESTS does, so
            # that DRF marking an error response for rollback undoes this request only.
            with transaction.atomic():
                return view_func(request, *view_args, **view_kwargs)
        return view_func(request, *view_args, **view_kwargs)
