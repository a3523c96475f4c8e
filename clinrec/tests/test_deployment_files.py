"""The deployment files, checked without a Docker engine: docker-compose.yml, the Dockerfile, .dockerignore,
.env.example and the requirements agree with each other and with the code they start.

Every environment variable handed to the containers must be one that `clinrec/settings.py` reads (a
misspelled name is silently ignored otherwise), every command they run must exist, and the image's build
steps must work with the environment the Dockerfile gives them.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands
from django.urls import resolve

BASE_DIR = Path(__file__).resolve().parents[2]
APP_SERVICES = ("api", "worker", "beat")
BACKING_SERVICES = ("rabbitmq", "redis", "postgres")
# Files whose shell commands somebody runs: each `manage.py X`, `celery -A X` and `gunicorn X:Y` must work.
COMMAND_FILES = ("Dockerfile", "docker-compose.yml", "Makefile", ".ci/run", "README.md")
SETTINGS_ENV_READERS = {"env", "env_bool", "env_int", "env_float", "env_list", "getenv", "get"}


def read(name: str) -> str:
    return (BASE_DIR / name).read_text()


@cache
def compose() -> dict:
    return yaml.safe_load(read("docker-compose.yml"))


@cache
def settings_variables() -> frozenset[str]:
    """Names of the environment variables clinrec/settings.py reads (`env("X")`, `env_int("X", 1)`, ...)."""
    names = set()
    for node in ast.walk(ast.parse(read("clinrec/settings.py"))):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        first = node.args[0]
        if (
            name in SETTINGS_ENV_READERS
            and isinstance(first, ast.Constant)
            and isinstance(first.value, str)
            and re.fullmatch(r"[A-Z][A-Z0-9_]*", first.value)
        ):
            names.add(first.value)
    return frozenset(names)


@cache
def env_example() -> dict[str, str]:
    entries: dict[str, str] = {}
    for number, line in enumerate(read(".env.example").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f".env.example line {number} is neither a comment nor NAME=value: {line!r}"
        assert name not in entries, f".env.example lists {name} twice"
        entries[name] = value
    return entries


def service_environment(service: dict) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(item.partition("=")[::2] for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's `${X}`, `${X:-default}`, `${X-default}`, `${X:?message}` and `$$`, as `docker compose` does."""

    def substitute(match: re.Match) -> str:
        name, colon, kind, argument = match.group("name"), match.group("colon"), match.group("kind"), match.group("arg")
        current = variables.get(name)
        missing = current is None or (colon and current == "")
        if kind == "-":
            return argument if missing else current
        if kind == "?":
            if missing:
                raise KeyError(f"compose requires {name}: {argument}")
            return current
        return current or ""

    pattern = re.compile(r"\$\{(?P<name>\w+)(?:(?P<colon>:?)(?P<kind>[-?])(?P<arg>[^}]*))?\}")
    return pattern.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


def command_text(command) -> str:
    return " ".join(command) if isinstance(command, list) else str(command or "")


# --- The Dockerfile, parsed -----------------------------------------------------------------------------------


@cache
def dockerfile_instructions() -> tuple[tuple[str, str], ...]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    logical, pending = [], ""
    for line in read("Dockerfile").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    instructions = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        arguments = arguments.strip()
        if keyword.upper() in {"CMD", "ENTRYPOINT", "RUN"} and arguments.startswith("["):
            arguments = shlex.join(json.loads(arguments))
        instructions.append((keyword.upper(), arguments))
    return tuple(instructions)


def dockerfile_env() -> dict[str, str]:
    values = {}
    for keyword, arguments in dockerfile_instructions():
        if keyword == "ENV":
            for item in shlex.split(arguments):
                name, _, value = item.partition("=")
                values[name] = value
    return values


def all_command_texts() -> dict[str, str]:
    """The text of every file that holds commands, the compose commands and healthchecks included."""
    texts = {name: read(name) for name in COMMAND_FILES if (BASE_DIR / name).exists()}
    texts["Dockerfile"] = "\n".join(arguments for _, arguments in dockerfile_instructions())
    for name, service in compose()["services"].items():
        texts[f"docker-compose.yml:{name}"] = command_text(service.get("command"))
        texts[f"docker-compose.yml:{name}:healthcheck"] = command_text((service.get("healthcheck") or {}).get("test"))
    return texts


def minimal_env(**extra: str) -> dict[str, str]:
    """A clean process environment: none of this machine's DATABASE_URL/REDIS_URL/... leaks in."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    env.update(extra)
    return env


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


# --- docker-compose.yml -----------------------------------------------------------------------------------------


def test_compose_has_the_app_and_its_services():
    services = compose()["services"]

    for name in (*APP_SERVICES, *BACKING_SERVICES):
        assert name in services, f"docker-compose.yml has no {name!r} service"


def test_rabbitmq_publishes_amqp_and_the_management_ui():
    ports = compose()["services"]["rabbitmq"].get("ports", [])
    published = set()
    for port in ports:
        if isinstance(port, dict):
            published.add(int(port["target"]))
        else:
            published.add(int(str(port).rsplit(":", 1)[-1].split("/")[0]))

    assert {5672, 15672} <= published


@pytest.mark.parametrize("name", ["postgres", "redis", "rabbitmq", "api"])
def test_service_has_a_healthcheck(name):
    healthcheck = compose()["services"][name].get("healthcheck") or {}

    assert healthcheck.get("test"), f"{name} has no healthcheck"
    assert not healthcheck.get("disable")


def test_api_healthcheck_calls_the_health_endpoint():
    test = command_text(compose()["services"]["api"]["healthcheck"]["test"])
    paths = re.findall(r"https?://[^/'\"\s]+(/[^'\"\s]*)", test)

    assert paths, test
    assert resolve(paths[0]).url_name == "health"


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_consumers_wait_for_healthy_services(name):
    depends_on = compose()["services"][name].get("depends_on")

    assert isinstance(depends_on, dict), f"{name}: depends_on must be a mapping with conditions, not {depends_on!r}"
    assert {"postgres", "rabbitmq"} <= set(depends_on), depends_on
    for dependency, condition in depends_on.items():
        assert condition.get("condition") == "service_healthy", f"{name} does not wait for {dependency} to be healthy"


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_consumers_run_the_api_image(name):
    services = compose()["services"]
    api, service = services["api"], services[name]

    assert service.get("build") or service.get("image") == api.get("image"), f"{name} runs an image nobody builds"


def test_api_migrates_before_starting_gunicorn():
    command = command_text(compose()["services"]["api"].get("command"))

    assert "manage.py migrate" in command
    assert "gunicorn" in command
    assert command.index("manage.py migrate") < command.index("gunicorn")
    # `a && b`: gunicorn must not start when the migration failed.
    between = command[command.index("manage.py migrate") : command.index("gunicorn")]
    assert "&&" in between and ";" not in between, command


def test_postgres_data_lives_in_a_named_volume():
    config = compose()
    named = set(config.get("volumes") or {})
    mounts = config["services"]["postgres"].get("volumes", [])
    sources = []
    for mount in mounts:
        if isinstance(mount, dict):
            if mount.get("target") == "/var/lib/postgresql/data":
                sources.append(mount.get("source"))
        elif str(mount).split(":")[1:2] == ["/var/lib/postgresql/data"]:
            sources.append(str(mount).split(":")[0])

    assert sources, f"postgres data is not mounted: {mounts}"
    assert sources[0] in named, f"{sources[0]!r} is not a named volume (top-level volumes: {sorted(named)})"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_container_variables_are_read_by_settings_and_documented(name):
    variables = service_environment(compose()["services"][name])

    assert variables, f"{name} gets no environment"
    unread = sorted(set(variables) - settings_variables())
    assert not unread, f"{name} passes variables clinrec/settings.py never reads: {unread}"
    undocumented = sorted(set(variables) - set(env_example()))
    assert not undocumented, f"{name} passes variables .env.example does not list: {undocumented}"


def test_app_containers_share_one_environment():
    services = compose()["services"]
    environments = {name: service_environment(services[name]) for name in APP_SERVICES}

    assert environments["worker"] == environments["api"] == environments["beat"]


def test_settings_load_with_the_compose_environment():
    """The containers' environment (compose defaults, a secret key set) gives the production shape."""
    variables = {"DJANGO_SECRET_KEY": "compose-test-" + "k" * 50}
    environment = {
        key: interpolate(value, variables) for key, value in service_environment(compose()["services"]["api"]).items()
    }
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'debug': s.DEBUG, 'db': s.DATABASES['default']['ENGINE'], "
        "'db_host': s.DATABASES['default']['HOST'], 'cache': s.CACHES['default']['BACKEND'], "
        "'broker': s.CELERY_BROKER_URL, 'eager': s.CELERY_TASK_ALWAYS_EAGER, 'hosts': s.ALLOWED_HOSTS, "
        "'ssl_redirect': s.SECURE_SSL_REDIRECT}))"
    )

    result = run_python(code, minimal_env(DJANGO_SETTINGS_MODULE="clinrec.settings", **environment))

    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["debug"] is False
    assert loaded["db"] == "django.db.backends.postgresql"
    assert loaded["db_host"] == "postgres"
    assert loaded["cache"] == "django_redis.cache.RedisCache"
    assert loaded["broker"].startswith("amqp://") and "@rabbitmq:5672" in loaded["broker"]
    assert loaded["eager"] is False
    # The api healthcheck calls 127.0.0.1 inside the container: that host must be allowed.
    assert "127.0.0.1" in loaded["hosts"]
    assert loaded["ssl_redirect"] is False


# --- Commands: manage.py, celery -A, gunicorn -----------------------------------------------------------------


def test_every_manage_py_command_exists():
    known = set(get_commands())
    used = {}
    for source, text in all_command_texts().items():
        for command in re.findall(r"manage\.py\s+([a-z_][a-z0-9_]*)", text):
            used.setdefault(command, source)

    assert {"migrate", "collectstatic", "seed_db"} <= set(used), used
    unknown = {command: source for command, source in used.items() if command not in known}
    assert not unknown, f"not management commands: {unknown}"


def test_every_celery_app_and_gunicorn_target_imports():
    celery_apps, wsgi_targets = set(), set()
    for text in all_command_texts().values():
        celery_apps.update(re.findall(r"celery\s+(?:-A|--app)[= ]\s*([\w.:]+)", text))
        wsgi_targets.update(re.findall(r"gunicorn['\"]?\s+['\"]?([\w.]+:[\w.]+)", text))
    assert celery_apps, "no `celery -A` command found"
    assert wsgi_targets, "no `gunicorn module:app` command found"
    code = (
        "import importlib, json, sys\n"
        "from celery import Celery\n"
        "from celery.app.utils import find_app\n"
        "apps, targets = json.loads(sys.argv[1]), json.loads(sys.argv[2])\n"
        "problems = []\n"
        "for name in apps:\n"
        "    found = find_app(name)\n"
        "    if not isinstance(found, Celery):\n"
        "        problems.append(f'celery -A {name}: {found!r} is not a Celery app')\n"
        "for target in targets:\n"
        "    module, attribute = target.split(':')\n"
        "    obj = importlib.import_module(module)\n"
        "    for part in attribute.split('.'):\n"
        "        obj = getattr(obj, part)\n"
        "    if not callable(obj):\n"
        "        problems.append(f'gunicorn {target}: not callable')\n"
        "print(json.dumps(problems))\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(sorted(celery_apps)), json.dumps(sorted(wsgi_targets))],
        cwd=BASE_DIR,
        env=minimal_env(DJANGO_SETTINGS_MODULE="clinrec.settings"),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


# --- The Dockerfile -----------------------------------------------------------------------------------------


def test_image_is_python_3_11():
    froms = [arguments for keyword, arguments in dockerfile_instructions() if keyword == "FROM"]

    assert froms, "the Dockerfile has no FROM"
    assert re.match(r"python:3\.11(\b|[-.])", froms[-1].split()[0]), froms[-1]


def test_image_runs_as_a_non_root_user():
    instructions = dockerfile_instructions()
    users = [
        (index, arguments.split(":")[0]) for index, (keyword, arguments) in enumerate(instructions) if keyword == "USER"
    ]

    assert users, "the Dockerfile never switches away from root"
    last_index, last_user = users[-1]
    assert last_user not in {"root", "0"}
    runtime = [index for index, (keyword, _) in enumerate(instructions) if keyword in {"CMD", "ENTRYPOINT"}]
    assert all(index > last_index for index in runtime), "CMD/ENTRYPOINT come before the USER switch"


def test_image_installs_the_pinned_requirements_before_copying_the_code():
    instructions = dockerfile_instructions()
    install = next(
        (
            i
            for i, (k, a) in enumerate(instructions)
            if k == "RUN" and re.search(r"pip install .*-r requirements\.txt", a)
        ),
        None,
    )
    copy_requirements = next(
        (i for i, (k, a) in enumerate(instructions) if k == "COPY" and "requirements.txt" in a.split()[:-1]), None
    )
    copy_all = next((i for i, (k, a) in enumerate(instructions) if k == "COPY" and a.split()[0] == "."), None)

    assert install is not None, "the Dockerfile does not pip install -r requirements.txt"
    assert copy_requirements is not None and copy_requirements < install
    # Installing before copying the code keeps the dependency layer cached across code changes.
    assert copy_all is None or install < copy_all


def test_image_collectstatic_step_works_with_its_environment():
    """Run the Dockerfile's collectstatic command, with exactly its environment, as a dry run."""
    steps = [
        arguments
        for keyword, arguments in dockerfile_instructions()
        if keyword == "RUN" and "collectstatic" in arguments
    ]
    assert steps, "the Dockerfile does not collect static files"
    tokens = shlex.split(steps[0])
    start = tokens.index("collectstatic")
    assignments = {}
    index = 0
    while "=" in tokens[index] and re.fullmatch(r"\w+=.*", tokens[index]):
        name, _, value = tokens[index].partition("=")
        assignments[name] = value
        index += 1
    assert tokens[index:start] == ["python", "manage.py"], tokens[index:start]
    arguments = []
    for token in tokens[start + 1 :]:
        if token in {"&&", "||", ";", "|"}:
            break
        arguments.append(token)

    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", *arguments, "--dry-run"],
        cwd=BASE_DIR,
        env=minimal_env(**dockerfile_env(), **assignments),
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode == 0, result.stderr[-3000:]


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image():
    ignored = {line.strip().rstrip("/") for line in read(".dockerignore").splitlines() if line.strip()}

    for entry in (".env", ".venv", ".git", "db.sqlite3"):
        assert entry in ignored, f".dockerignore does not exclude {entry}"


# --- .env.example and requirements ------------------------------------------------------------------------------


def test_every_env_example_variable_is_read_by_settings():
    stale = sorted(set(env_example()) - settings_variables())

    assert not stale, f".env.example lists variables clinrec/settings.py never reads: {stale}"


def test_every_variable_settings_reads_is_in_env_example():
    missing = sorted(settings_variables() - set(env_example()))

    assert not missing, f".env.example does not list: {missing}"


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-dev.txt"])
def test_requirements_are_pinned(name):
    unpinned = []
    for line in read(name).splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-r "):
            continue
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[\w,-]+\])?==[A-Za-z0-9.+!-]+", line):
            unpinned.append(line)

    assert not unpinned, f"{name}: not pinned with ==: {unpinned}"
