"""`POST /api/v1/security/register/`: administrators create users with a role; weak passwords are refused."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from conftest import client_for, make_user
from security.roles import ADMIN, CLINICIAN, VIEWER

REGISTER_URL = "/api/v1/security/register/"
TOKEN_URL = "/api/v1/security/token/"
NEW_PASSWORD = "Ward-7-night-shift!"

pytestmark = pytest.mark.django_db

User = get_user_model()


def new_user(**overrides) -> dict:
    return {"username": "nurse.jones", "password": NEW_PASSWORD, "email": "jones@hospital.example", **overrides}


def role_names(username: str) -> set[str]:
    return set(User.objects.get(username=username).groups.values_list("name", flat=True))


def test_anonymous_cannot_register_users(anon_client):
    response = anon_client.post(REGISTER_URL, new_user(), format="json")
    assert response.status_code == 401
    assert not User.objects.filter(username="nurse.jones").exists()


@pytest.mark.parametrize("client_fixture", ["viewer_client", "clinician_client", "no_role_client"])
def test_non_administrators_cannot_register_users(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    response = client.post(REGISTER_URL, new_user(role=ADMIN), format="json")
    assert response.status_code == 403
    assert not User.objects.filter(username="nurse.jones").exists()


def test_admin_registers_a_viewer_by_default(admin_client_jwt):
    response = admin_client_jwt.post(REGISTER_URL, new_user(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["username"] == "nurse.jones"
    assert body["email"] == "jones@hospital.example"
    assert body["role"] == VIEWER
    assert "password" not in body
    assert role_names("nurse.jones") == {VIEWER}
    user = User.objects.get(username="nurse.jones")
    assert body["id"] == user.pk
    assert user.check_password(NEW_PASSWORD)
    assert user.is_staff  # every role may log in to the admin, which shows it what it may do (viewers: read)
    assert not user.is_superuser


def test_superuser_without_role_may_register(db):
    superuser = get_user_model().objects.create_superuser("root", password="Str0ng-pass!word")
    response = client_for(superuser).post(REGISTER_URL, new_user(), format="json")
    assert response.status_code == 201, response.content


def test_registered_clinician_is_in_clinician_group_and_can_write_patients(admin_client_jwt, anon_client):
    response = admin_client_jwt.post(REGISTER_URL, new_user(role=CLINICIAN), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["role"] == CLINICIAN
    assert role_names("nurse.jones") == {CLINICIAN}
    assert User.objects.get(username="nurse.jones").is_staff  # clinicians use the admin site

    access = anon_client.post(TOKEN_URL, {"username": "nurse.jones", "password": NEW_PASSWORD}, format="json").json()[
        "access"
    ]
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    created = anon_client.post("/api/v1/patients/", {"id": "108", "name": "Ada Byron", "sex": "female"}, format="json")
    assert created.status_code == 201, created.content


def test_registered_viewer_can_read_but_not_write_patients(admin_client_jwt, anon_client):
    admin_client_jwt.post(REGISTER_URL, new_user(), format="json")
    access = anon_client.post(TOKEN_URL, {"username": "nurse.jones", "password": NEW_PASSWORD}, format="json").json()[
        "access"
    ]
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert anon_client.get("/api/v1/patients/").status_code == 200
    assert anon_client.post("/api/v1/patients/", {"id": "108", "name": "Ada"}, format="json").status_code == 403


def test_registered_admin_can_register_others(admin_client_jwt):
    response = admin_client_jwt.post(REGISTER_URL, new_user(role=ADMIN), format="json")
    assert response.status_code == 201, response.content
    new_admin = User.objects.get(username="nurse.jones")
    assert role_names("nurse.jones") == {ADMIN}
    second = client_for(new_admin).post(REGISTER_URL, new_user(username="porter.smith"), format="json")
    assert second.status_code == 201, second.content


def test_new_user_can_get_a_token(admin_client_jwt, anon_client):
    admin_client_jwt.post(REGISTER_URL, new_user(), format="json")
    response = anon_client.post(TOKEN_URL, {"username": "nurse.jones", "password": NEW_PASSWORD}, format="json")
    assert response.status_code == 200
    assert {"access", "refresh"} <= set(response.json())


def test_register_accepts_form_fields(admin_client_jwt):
    response = admin_client_jwt.post(REGISTER_URL, new_user(role=CLINICIAN), format="multipart")
    assert response.status_code == 201, response.content
    assert role_names("nurse.jones") == {CLINICIAN}


def test_email_is_optional(admin_client_jwt):
    payload = new_user()
    del payload["email"]
    response = admin_client_jwt.post(REGISTER_URL, payload, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["email"] == ""


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("123", id="short-and-numeric"),
        pytest.param("password", id="common"),
        pytest.param("12345678901", id="all-numeric"),
        pytest.param("nurse.jones", id="same-as-username"),
    ],
)
def test_weak_password_is_400_naming_password(admin_client_jwt, password):
    response = admin_client_jwt.post(REGISTER_URL, new_user(password=password), format="json")
    assert response.status_code == 400
    assert "password" in response.json()
    assert response.json()["password"]
    assert not User.objects.filter(username="nurse.jones").exists()


def test_password_too_close_to_email_is_400(admin_client_jwt):
    payload = new_user(username="nj", email="gardenershed@hospital.example", password="gardenershed")
    response = admin_client_jwt.post(REGISTER_URL, payload, format="json")
    assert response.status_code == 400
    assert "password" in response.json()


def test_duplicate_username_is_400(admin_client_jwt):
    make_user("nurse.jones", VIEWER)
    response = admin_client_jwt.post(REGISTER_URL, new_user(), format="json")
    assert response.status_code == 400
    assert "username" in response.json()
    assert User.objects.filter(username="nurse.jones").count() == 1


def test_unknown_role_is_400_naming_role(admin_client_jwt):
    response = admin_client_jwt.post(REGISTER_URL, new_user(role="surgeon"), format="json")
    assert response.status_code == 400
    assert "role" in response.json()
    assert not User.objects.filter(username="nurse.jones").exists()


def test_missing_username_and_password_is_400_naming_them(admin_client_jwt):
    response = admin_client_jwt.post(REGISTER_URL, {"role": VIEWER}, format="json")
    assert response.status_code == 400
    assert {"username", "password"} <= set(response.json())


def test_invalid_username_and_email_are_400(admin_client_jwt):
    response = admin_client_jwt.post(
        REGISTER_URL, new_user(username="nurse jones!", email="not-an-email"), format="json"
    )
    assert response.status_code == 400
    assert {"username", "email"} <= set(response.json())


def test_username_differing_only_in_case_is_refused(admin_client_jwt):
    first = admin_client_jwt.post(REGISTER_URL, {"username": "nurse.kim", "password": NEW_PASSWORD}, format="json")
    assert first.status_code == 201
    second = admin_client_jwt.post(REGISTER_URL, {"username": "Nurse.Kim", "password": NEW_PASSWORD}, format="json")
    assert second.status_code == 400
    assert "username" in second.json()
