"""
ClinRec settings: every value that varies between machines is read from the environment here, and only here.

With nothing set, ClinRec runs in its embedded default (SQLite file, local-memory cache, Celery tasks run
eagerly in the API process, DEBUG on). `DATABASE_URL`, `REDIS_URL` and `CELERY_BROKER_URL` switch to
PostgreSQL, Redis and RabbitMQ. `.env.example` lists every variable with its default.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    """The variable's value; unset and empty both mean the default (so a copied .env.example changes nothing)."""
    return os.environ.get(name, "").strip() or default


def env_bool(name: str, default: bool) -> bool:
    raw = env(name)
    if not raw:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off).")


def env_int(name: str, default: int) -> int:
    raw = env(name)
    try:
        return int(raw) if raw else default
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from exc


def env_float(name: str, default: float) -> float:
    raw = env(name)
    try:
        return float(raw) if raw else default
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


# --- Core ------------------------------------------------------------------------------------------------

DEVELOPMENT_SECRET_KEY = "django-insecure-clinrec-development-only-never-use-in-production"

# DJANGO_ENV=production flips the defaults to safe ones and turns misconfiguration into a refusal to start.
ENVIRONMENT = env("DJANGO_ENV", "development").lower()
if ENVIRONMENT not in {"development", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV must be 'development' or 'production', not {ENVIRONMENT!r}.")
PRODUCTION = ENVIRONMENT == "production"

DEBUG = env_bool("DJANGO_DEBUG", not PRODUCTION)
SECRET_KEY = env("DJANGO_SECRET_KEY") or DEVELOPMENT_SECRET_KEY

if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_ENV=production refuses to start with DJANGO_DEBUG on.")
if (PRODUCTION or not DEBUG) and SECRET_KEY == DEVELOPMENT_SECRET_KEY:
    raise ImproperlyConfigured(
        "Refusing to start with the development secret key while DEBUG is off: set DJANGO_SECRET_KEY "
        "(for example: python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "clinrec.apps.ClinRecAdminConfig",  # django.contrib.admin with a hardened site (clinrec/admin.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "clinrec",
    "patients",
    "procedures",
    "recommendations",
    "security",
]

MIDDLEWARE = [
    "clinrec.middleware.RefuseUnusableInputMiddleware",  # first: see its docstring (issue 7, bad input)
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "clinrec.middleware.ApiPathMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "clinrec.urls"
WSGI_APPLICATION = "clinrec.wsgi.application"
ASGI_APPLICATION = "clinrec.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------------------------

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# A request either commits whole or not at all.
DATABASES["default"]["ATOMIC_REQUESTS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several threads of runserver (and the eager consumer) share the file: wait for the lock, don't fail.
    # IMMEDIATE takes the write lock when a transaction starts, so two concurrent writers queue up instead
    # of one failing with "database is locked" when it upgrades its read lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    # A database host that drops packets must not hang every request for the kernel's TCP timeout.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache -----------------------------------------------------------------------------------------------

REDIS_URL = env("REDIS_URL")
# The local-memory cache is per process: a write by another process (a management command in another
# terminal) reaches it only when entries expire, so they expire sooner there. Redis is shared: fresh at once.
CACHE_TTL_SECONDS = env_int("CACHE_TTL_SECONDS", 300 if REDIS_URL else 60)
CACHE_KEY_PREFIX = env("CACHE_KEY_PREFIX", "clinrec")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "TIMEOUT": CACHE_TTL_SECONDS,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                # A dead Redis must cost milliseconds and never an error: the API reads the database instead.
                "SOCKET_CONNECT_TIMEOUT": env_float("REDIS_SOCKET_TIMEOUT", 0.25),
                "SOCKET_TIMEOUT": env_float("REDIS_SOCKET_TIMEOUT", 0.25),
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "clinrec",
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "TIMEOUT": CACHE_TTL_SECONDS,
        }
    }

# --- Auth, i18n, static ------------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Compressed but not hashed: a missing manifest can never turn a page into a 500.
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
    },
}
# In development whitenoise serves straight from the apps' static folders; production serves STATIC_ROOT.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
LOGIN_URL = "/api-auth/login/"
LOGIN_REDIRECT_URL = "/api/v1/"

# --- Security behind a proxy (all configurable; safe defaults in production) -------------------------------

if env_bool("DJANGO_USE_X_FORWARDED_PROTO", PRODUCTION):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/$"]
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", PRODUCTION)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", PRODUCTION)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Django REST framework, JWT, OpenAPI --------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # JWT first so that an anonymous request gets 401 with a Bearer challenge, not 403.
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["security.permissions.RoleModelPermissions"],
    "DEFAULT_PAGINATION_CLASS": "clinrec.pagination.LimitOffsetSkipPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "clinrec.exceptions.exception_handler",
    # DRF's defaults, with a JSON parser that bounds nesting depth (API_JSON_MAX_DEPTH below).
    "DEFAULT_PARSER_CLASSES": [
        "clinrec.parsers.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_TOKEN_MINUTES", 30)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_TOKEN_DAYS", 1)),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "ClinRec API",
    "DESCRIPTION": (
        "Clinical recommendation service: hospital systems push patients, procedure histories and the "
        "catalogue of care programmes; ClinRec evaluates patients against clinical rules, records what it "
        "recommends and why, and publishes an event for each new recommendation. "
        "Authenticate with `POST /api/v1/security/token/` and send `Authorization: Bearer <access>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc served from this server, not a CDN: hospital networks are often closed.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "SexEnum": "patients.models.Sex",
        "RecommendationStatusEnum": "recommendations.models.RecommendationStatus",
        "EventStatusEnum": "recommendations.models.EventStatus",
    },
    # Issue 7: links from each create/read to the item's operations (schemathesis' stateful phase chains them),
    # and the refusals of the HTTP layer (413, 414, 415) on every operation.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "clinrec.openapi.add_resource_links",
        "clinrec.openapi.document_refused_requests",
    ],
}

# --- Bad input (issue 7): bounds on what a request may carry --------------------------------------------------

# Deepest nesting of arrays/objects a JSON body may have (deeper: 400). No resource needs more than a few.
API_JSON_MAX_DEPTH = env_int("API_JSON_MAX_DEPTH", 32)
# Largest body (bytes) and most form fields Django reads; over them: JSON 413 / 400 under /api/.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)
DATA_UPLOAD_MAX_NUMBER_FIELDS = env_int("DATA_UPLOAD_MAX_NUMBER_FIELDS", 1000)

# --- Celery (RabbitMQ in production; eager in the API process by default) ---------------------------------

CELERY_BROKER_URL = env("CELERY_BROKER_URL")
# No broker configured: run tasks in the API process, so `make run` alone shows the whole event flow.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = False
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://localhost/"
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", "clinrec")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
# At-least-once delivery: a message is acknowledged only after its handler finished; the handler is idempotent.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = env_float("CELERY_BROKER_CONNECTION_TIMEOUT", 2.0)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 120)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 90)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = TIME_ZONE
OUTBOX_RELAY_INTERVAL_SECONDS = env_int("OUTBOX_RELAY_INTERVAL_SECONDS", 30)
EVENT_HANDLER_MAX_RETRIES = env_int("EVENT_HANDLER_MAX_RETRIES", 5)
CELERY_BEAT_SCHEDULE = {
    "publish-pending-events": {
        "task": "recommendations.publish_pending_events",
        "schedule": float(OUTBOX_RELAY_INTERVAL_SECONDS),
    },
}

# --- Recommendation engine -----------------------------------------------------------------------------------

RECOMMENDATION_ENGINE = env("RECOMMENDATION_ENGINE", "recommendations.engine.RuleEngine")
PHYSICAL_THERAPY_MIN_AGE = env_int("PHYSICAL_THERAPY_MIN_AGE", 65)
WEIGHT_MANAGEMENT_MIN_BMI = env_float("WEIGHT_MANAGEMENT_MIN_BMI", 30.0)
ADMISSIBLE_DEPARTMENTS_FOR_REHAB = env_list("ADMISSIBLE_DEPARTMENTS_FOR_REHAB", "orthopaedics")
REHAB_WINDOW_DAYS = env_int("REHAB_WINDOW_DAYS", 90)

# --- E-mail notifications ----------------------------------------------------------------------------------

EMAIL_HOST = env("EMAIL_HOST")
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "clinrec@localhost")
CARE_TEAM_EMAIL = env_list("CARE_TEAM_EMAIL", "care-team@localhost")

# --- Health ------------------------------------------------------------------------------------------------

# Which checks turn /api/v1/health/ into a 503. The others are reported but only make it "degraded":
# the API keeps answering without Redis (it reads the database) and without RabbitMQ (events wait).
HEALTH_REQUIRED_CHECKS = env_list("HEALTH_REQUIRED_CHECKS", "database")

# --- Logging -----------------------------------------------------------------------------------------------

LOG_LEVEL = env("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "INFO"},
    },
}

# --- Development conveniences --------------------------------------------------------------------------------

DEV_ADMIN_USERNAME = env("DEV_ADMIN_USERNAME", "admin")
DEV_ADMIN_PASSWORD = env("DEV_ADMIN_PASSWORD", "admin")
