"""The settings refuse unsafe or malformed configurations, and Celery really got its reliability settings.

The refusals are checked in a fresh interpreter with `clinrec.settings` (not the test settings), as a server
would start.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
SETUP = "import django; django.setup(); from django.conf import settings; print('DEBUG', settings.DEBUG)"
# Anything that could leak from the machine running the tests into the configuration under test.
STRIPPED_PREFIXES = ("DJANGO_", "CELERY_", "DATABASE_", "REDIS_", "EMAIL_", "CACHE_", "JWT_", "HEALTH_")


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(STRIPPED_PREFIXES)}
    clean.update({"DJANGO_SETTINGS_MODULE": "clinrec.settings", **env})
    return subprocess.run(
        [sys.executable, *args], cwd=PROJECT_DIR, env=clean, capture_output=True, text=True, timeout=120
    )


def start(**env: str) -> subprocess.CompletedProcess:
    return run(["-c", SETUP], **env)


def output(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def real_key() -> str:
    return secrets.token_urlsafe(50)


def test_embedded_default_starts_with_debug():
    result = start()
    assert result.returncode == 0, output(result)
    assert "DEBUG True" in result.stdout


def test_debug_off_without_secret_key_refuses_to_start():
    result = start(DJANGO_DEBUG="0")
    assert result.returncode != 0, output(result)
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_debug_off_with_a_secret_key_starts():
    result = start(DJANGO_DEBUG="0", DJANGO_SECRET_KEY=real_key())
    assert result.returncode == 0, output(result)
    assert "DEBUG False" in result.stdout


def test_production_without_secret_key_refuses_to_start():
    result = start(DJANGO_ENV="production")
    assert result.returncode != 0, output(result)
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_with_debug_refuses_to_start():
    result = start(DJANGO_ENV="production", DJANGO_DEBUG="1", DJANGO_SECRET_KEY=real_key())
    assert result.returncode != 0, output(result)
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_DEBUG" in result.stderr


def test_production_defaults_to_debug_off():
    result = start(DJANGO_ENV="production", DJANGO_SECRET_KEY=real_key(), DJANGO_ALLOWED_HOSTS="clinrec.example.org")
    assert result.returncode == 0, output(result)
    assert "DEBUG False" in result.stdout


def test_production_passes_the_deployment_checklist():
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY=real_key(),
        DJANGO_ALLOWED_HOSTS="clinrec.example.org",
    )
    assert result.returncode == 0, output(result)


def test_deployment_checklist_catches_missing_allowed_hosts():
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY=real_key(),
    )
    assert result.returncode != 0, output(result)
    assert "security.W020" in result.stderr, output(result)


@pytest.mark.parametrize(
    "env, named",
    [
        pytest.param({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG", id="boolean"),
        pytest.param({"DJANGO_ENV": "staging"}, "DJANGO_ENV", id="environment"),
        pytest.param({"REHAB_WINDOW_DAYS": "ninety"}, "REHAB_WINDOW_DAYS", id="integer"),
        pytest.param({"WEIGHT_MANAGEMENT_MIN_BMI": "thirty"}, "WEIGHT_MANAGEMENT_MIN_BMI", id="number"),
    ],
)
def test_malformed_value_refuses_to_start_naming_the_variable(env, named):
    result = start(**env)
    assert result.returncode != 0, output(result)
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured"), output(result)
    assert named in last_line


def test_celery_reliability_settings_took_effect():
    from clinrec.celery import app

    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 4  # reserved messages stay unacked until handled (acks_late)
    assert conf.task_serializer == "json"
    assert conf.result_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert conf.broker_connection_retry_on_startup is True
    assert conf.task_time_limit and conf.task_time_limit > 0
    assert conf.task_soft_time_limit and conf.task_soft_time_limit < conf.task_time_limit
    assert conf.task_default_queue == "clinrec"
    assert "publish-pending-events" in conf.beat_schedule


def test_celery_finds_the_event_tasks():
    from clinrec.celery import app

    app.loader.import_default_modules()
    assert {"recommendations.handle_recommendation_event", "recommendations.publish_pending_events"} <= set(app.tasks)
