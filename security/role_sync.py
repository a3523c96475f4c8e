"""Keeps the role groups' permissions equal to `security.roles` after every `migrate`.

The migration `0001_roles` created the groups once; a model added later (e.g. rule sets) brings new model
permissions, which this post-migrate hook gives to the roles `role_permissions` names, so no app needs a
migration of its own to grant them.
"""

from __future__ import annotations

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from security.roles import ROLES, role_permissions


def sync_roles(*, using: str = "default") -> None:
    """Create every role group and set its permissions to exactly those of `role_permissions`."""
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using)
    for role in ROLES:
        group, _ = Group.objects.using(using).get_or_create(name=role)
        condition = Q(pk__in=[])
        for app_label, codename in role_permissions(role):
            condition |= Q(content_type__app_label=app_label, codename=codename)
        group.permissions.set(Permission.objects.using(using).filter(condition))


def sync_roles_after_migrate(sender, *, using: str = "default", **kwargs) -> None:
    """post_migrate receiver: runs once per migrate, after the last app's signal (every permission exists then).

    Django sends post_migrate only for apps with a models module, and `security` has none, so the hook keys
    on the last app that does receive it rather than on its own app.
    """
    with_models = [config for config in global_apps.get_app_configs() if config.models_module is not None]
    if with_models and sender.name == with_models[-1].name:
        sync_roles(using=using)
