"""The admin site every app registers with: Django's, with change lists that survive any query string.

Django's admin turns most bad query strings into "?e=1" (its IncorrectLookupParameters), but a filter whose
value only fails when the query runs (`?birth_date__year=99999999999`: a year Python's dates cannot hold, an
integer the database refuses) used to end in a 500. Every registered ModelAdmin gets `SafeChangeListMixin`,
so such a list answers like any other bad filter. It is applied by the site, so an admin added later gets it
without anyone remembering to.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db import DatabaseError, transaction

# What a filter value the database or Python's dates cannot take raises (an invalid regex on SQLite is an
# OperationalError, on PostgreSQL a DataError). Should the database itself be failing, Django's admin shows its
# "database is misconfigured" page on the "?e=1" retry instead of a 500.
BAD_FILTER_ERRORS = (ValueError, TypeError, OverflowError, DatabaseError)


class SafeChangeList(ChangeList):
    """A ChangeList for which filters that fail to build or to run mean "bad filters" ("?e=1"), never a 500."""

    def get_filters(self, request):
        # The date hierarchy turns `?x__year=` into dates here; a year past 9999 is an OverflowError Django misses.
        try:
            return super().get_filters(request)
        except (ValueError, TypeError, OverflowError) as exc:
            raise IncorrectLookupParameters(exc) from exc

    def get_results(self, request):
        try:
            # A savepoint: on PostgreSQL a refused query would otherwise abort the whole request's transaction.
            with transaction.atomic(using=self.queryset.db):
                super().get_results(request)
        except BAD_FILTER_ERRORS as exc:
            raise IncorrectLookupParameters(exc) from exc


class SafeChangeListMixin:
    """ModelAdmin mixin: the change list is a SafeChangeList."""

    def get_changelist(self, request, **kwargs):
        changelist = super().get_changelist(request, **kwargs)
        if changelist is ChangeList:
            return SafeChangeList
        return changelist


class ClinRecAdminSite(admin.AdminSite):
    """The default admin site: every ModelAdmin registered on it gets SafeChangeListMixin."""

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, SafeChangeListMixin):
            admin_class = type(
                admin_class.__name__, (SafeChangeListMixin, admin_class), {"__module__": admin_class.__module__}
            )
        return super().register(model_or_iterable, admin_class, **options)


class ReadOnlyAdminMixin:
    """For records only the code writes (events, merge records, the role groups): shown, never added, changed or
    deleted through the admin."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
