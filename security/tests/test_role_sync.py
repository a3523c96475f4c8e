"""Roles stay in sync with the code: `migrate` (re)applies each role's permissions, new models included."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from security import role_sync
from security.roles import ADMIN, CLINICIAN, VIEWER, role_permissions


def codenames(role: str) -> set[tuple[str, str]]:
    return set(Group.objects.get(name=role).permissions.values_list("content_type__app_label", "codename"))


@pytest.mark.django_db
def test_a_permission_added_to_a_role_reaches_its_group_after_migrate(monkeypatch):
    # The patient-merge record came after the roles' migration: give the viewer role its view permission in
    # code only, as a developer adding a model would, and run migrate (nothing to migrate; the hook still runs).
    added = ("patients", "view_patientmerge")
    assert added not in codenames(VIEWER)
    monkeypatch.setattr(
        role_sync, "role_permissions", lambda role: role_permissions(role) | ({added} if role == VIEWER else set())
    )

    call_command("migrate", verbosity=0, interactive=False)

    assert added in codenames(VIEWER)
    assert added not in codenames(CLINICIAN)


@pytest.mark.django_db
def test_migrate_takes_back_a_permission_granted_to_a_group_by_hand():
    stray = Group.objects.get(name=VIEWER)
    stray.permissions.add(*Group.objects.get(name=ADMIN).permissions.filter(codename="merge_patient"))

    call_command("migrate", verbosity=0, interactive=False)

    assert ("patients", "merge_patient") not in codenames(VIEWER)


@pytest.mark.django_db
def test_the_permissions_of_this_issue_are_on_the_roles_after_migrate():
    assert ("patients", "merge_patient") in codenames(ADMIN)
    assert ("patients", "merge_patient") not in codenames(CLINICIAN)
    assert {("patients", "view_patient_history")} <= codenames(CLINICIAN) & codenames(ADMIN)
    assert ("patients", "view_patient_history") not in codenames(VIEWER)
