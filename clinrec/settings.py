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
from csp import constants as csp_constants
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
    # security: the refresh-token blacklist (rotation, logout) and the Content-Security-Policy header.
    "rest_framework_simplejwt.token_blacklist",
    "csp",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "clinrec",
    "patients",
    "procedures",
    "recommendations",
    "security",
    # --- interop (FHIR R4B, CDS Hooks) ---
    "corsheaders",
    "interop",
]

MIDDLEWARE = [
    "clinrec.middleware.RefuseUnusableInputMiddleware",  # first: see its docstring (issue 7, bad input)
    # perf: a cached API read served whole once it passed the same checks (clinrec/fast_reads.py); outside
    # every middleware that adds headers, so what it keeps is the final response.
    "clinrec.fast_reads.FastReadMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # security: a Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below).
    "security.csp.CSPMiddleware",
    # interop: CORS for the EHR origins of CDS Hooks and FHIR, before anything that may answer on its own.
    "corsheaders.middleware.CorsMiddleware",
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
else:
    # A database host that drops packets must not hang every request for the kernel's TCP timeout.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache -----------------------------------------------------------------------------------------------

REDIS_URL = env("REDIS_URL")
# The local-memory cache is per process (its entries are dropped sooner); either way a write by any process
# retires the entries it changes at once, through the version tokens in the database (clinrec/cache.py).
CACHE_TTL_SECONDS = env_int("CACHE_TTL_SECONDS", 300 if REDIS_URL else 60)
CACHE_KEY_PREFIX = env("CACHE_KEY_PREFIX", "clinrec")
# perf: cached reads each process keeps in memory in front of the shared cache (0: none); as fresh as Redis's,
# since their keys carry the database's version tokens (clinrec/cache.py).
READ_CACHE_LOCAL_ENTRIES = env_int("READ_CACHE_LOCAL_ENTRIES", 256)
# A hung Redis costs one socket timeout, then is skipped for this long before one call tries it again.
REDIS_SOCKET_TIMEOUT = env_float("REDIS_SOCKET_TIMEOUT", 0.25)
CACHE_CIRCUIT_OPEN_SECONDS = env_float("CACHE_CIRCUIT_OPEN_SECONDS", 10.0)


def redis_cache(location: str, *, key_prefix: str = CACHE_KEY_PREFIX, timeout: int = CACHE_TTL_SECONDS) -> dict:
    """One Django cache on Redis: a failing Redis is a cache miss, never an error (clinrec/redis_breaker.py)."""
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": location,
        "KEY_PREFIX": key_prefix,
        "TIMEOUT": timeout,
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "REDIS_CLIENT_CLASS": "clinrec.redis_breaker.CircuitBreakerRedis",
            "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            "IGNORE_EXCEPTIONS": True,
        },
    }


# The circuit breaker logs one warning per outage interval; django-redis would log a traceback per call.
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = False
if REDIS_URL:
    CACHES = {"default": redis_cache(REDIS_URL)}
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
        # perf: simplejwt with a per-user snapshot (user and permissions), dropped on any auth change.
        "security.authentication.SnapshotJWTAuthentication",
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
    # A refresh token works once: refreshing returns a new one and blacklists the one sent, so a stolen
    # refresh token is refused as soon as either party uses it again. Logout blacklists it too.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    # perf: an access token's signature is checked once per process; expiry and type on every request.
    "AUTH_TOKEN_CLASSES": ("security.tokens.AccessToken",),
    "TOKEN_OBTAIN_SERIALIZER": "security.serializers.LoginSerializer",
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
# Messages each worker process reserves ahead. With acks_late a reserved message stays unacknowledged until
# handled, so a worker lost mid-way has it redelivered: nothing is lost. With 1 the worker waited a broker round
# trip between messages; 4 keeps it busy (scripts/bench_worker.py).
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 4)
# Worker processes (prefork); default: one per CPU, but one on SQLite, whose single writer two would only queue for.
CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", 0) or (
    1 if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" else None
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = env_float("CELERY_BROKER_CONNECTION_TIMEOUT", 2.0)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 120)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 90)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = TIME_ZONE
OUTBOX_RELAY_INTERVAL_SECONDS = env_int("OUTBOX_RELAY_INTERVAL_SECONDS", 30)
# Events per message the outbox sends (a backlog, or one evaluation's events): the worker handles them in one
# transaction, one fsync instead of one per event, each event still handled once (scripts/bench_worker.py).
EVENT_BATCH_SIZE = env_int("EVENT_BATCH_SIZE", 50)
EVENT_HANDLER_MAX_RETRIES = env_int("EVENT_HANDLER_MAX_RETRIES", 5)
CELERY_BEAT_SCHEDULE = {
    "publish-pending-events": {
        "task": "recommendations.publish_pending_events",
        "schedule": float(OUTBOX_RELAY_INTERVAL_SECONDS),
    },
}

# --- Tokens and Content-Security-Policy (security) --------------------------------------------------------

# Expired outstanding (and blacklisted) refresh tokens are deleted by beat this often: an expired token is
# refused by its signature's `exp` anyway, so only the table's size is at stake. Revoked, unexpired ones stay.
JWT_FLUSH_EXPIRED_TOKENS_HOURS = env_int("JWT_FLUSH_EXPIRED_TOKENS_HOURS", 24)
CELERY_BEAT_SCHEDULE["flush-expired-tokens"] = {
    "task": "security.flush_expired_tokens",
    "schedule": float(JWT_FLUSH_EXPIRED_TOKENS_HOURS * 3600),
}

# Every page loads only from this server, and runs no inline script: an injected <script> or a remote host is
# refused by the browser. Swagger UI and Redoc come from the sidecar and are started by script files, and
# Redoc's page adds what its bundle needs (security/docs.py). A <style> element needs the response's nonce.
# `data:` images are the icons Swagger UI and Redoc embed in their CSS. Violations are reported to
# CONTENT_SECURITY_POLICY_REPORT_URI when it is set.
CONTENT_SECURITY_POLICY_REPORT_URI = env("CONTENT_SECURITY_POLICY_REPORT_URI")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp_constants.SELF],
        "script-src": [csp_constants.SELF],
        "style-src": [csp_constants.SELF, csp_constants.NONCE],
        # style="..." attributes, which DRF's browsable API and login templates use: they run no code and load
        # nothing from another host (img-src still applies); <style> elements still need the nonce.
        "style-src-attr": [csp_constants.UNSAFE_INLINE],
        "img-src": [csp_constants.SELF, "data:"],
        "connect-src": [csp_constants.SELF],
        "object-src": [csp_constants.NONE],
        "base-uri": [csp_constants.SELF],
        "form-action": [csp_constants.SELF],
        "frame-ancestors": [csp_constants.NONE],
        **({"report-uri": [CONTENT_SECURITY_POLICY_REPORT_URI]} if CONTENT_SECURITY_POLICY_REPORT_URI else {}),
    }
}
# Swagger UI would otherwise show a badge fetched from validator.swagger.io, sending it the schema's address.
SPECTACULAR_SETTINGS["SWAGGER_UI_SETTINGS"] = {"deepLinking": True, "validatorUrl": None}
# DRF's renderers, the browsable API's without the inline stylesheet the policy refuses (security/renderers.py).
REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"] = [
    "rest_framework.renderers.JSONRenderer",
    "security.renderers.BrowsableAPIRenderer",
]

# --- Outbox reliability: publisher confirms, re-publish, draining (issue 7) ---------------------------------------

# An event is `published` only once RabbitMQ confirmed it (publisher confirms). A publish the broker has not
# confirmed within OUTBOX_CONFIRM_TIMEOUT_SECONDS counts as failed: the event stays `pending` for the relay, and
# a black-holed link costs a request at most this wait (plus CELERY_BROKER_CONNECTION_TIMEOUT for a new link).
OUTBOX_CONFIRM_TIMEOUT_SECONDS = env_float("OUTBOX_CONFIRM_TIMEOUT_SECONDS", 2.0)
# A blocking read or write on a broker socket (a channel opening, a queue declaring, a close) gives up after
# this long: without it a link that drops packets hangs the caller for good.
CELERY_BROKER_SOCKET_TIMEOUT = env_float("CELERY_BROKER_SOCKET_TIMEOUT", 10.0)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "confirm_publish": True,
    "read_timeout": CELERY_BROKER_SOCKET_TIMEOUT,
    "write_timeout": CELERY_BROKER_SOCKET_TIMEOUT,
}
# The worker's link to RabbitMQ: heartbeats let both ends notice a dead connection within about two intervals.
CELERY_BROKER_HEARTBEAT = env_int("CELERY_BROKER_HEARTBEAT", 30)
# An event published but not consumed this long after is published again (the consumer skips duplicates) ...
OUTBOX_REPUBLISH_AFTER_SECONDS = env_float("OUTBOX_REPUBLISH_AFTER_SECONDS", 300.0)
# ... at most this many times; then it is `failed`, with the reason in last_error, for an operator to requeue.
OUTBOX_MAX_REPUBLISHES = env_int("OUTBOX_MAX_REPUBLISHES", 5)
# The relay claims this many events per transaction and loops until nothing is due or its time is up, so a
# backlog drains in one run and beat ticks never pile up behind a long run.
OUTBOX_RELAY_BATCH_SIZE = env_int("OUTBOX_RELAY_BATCH_SIZE", 200)
OUTBOX_RELAY_TIME_BUDGET_SECONDS = env_float("OUTBOX_RELAY_TIME_BUDGET_SECONDS", OUTBOX_RELAY_INTERVAL_SECONDS * 2 / 3)
# A tick that waited longer than an interval (no worker running) is dropped: the next one does the same work.
CELERY_BEAT_SCHEDULE["publish-pending-events"]["options"] = {"expires": float(OUTBOX_RELAY_INTERVAL_SECONDS)}

# --- Recommendation engine -----------------------------------------------------------------------------------

RECOMMENDATION_ENGINE = env("RECOMMENDATION_ENGINE", "recommendations.engine.RuleEngine")
# Governance: these four only seed rule-set version 1 (after migrate, or on first use); the active rule set
# decides from then on (recommendations.services.rule_sets).
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

# --- Optimistic concurrency (ETag / If-Match; see clinrec/concurrency.py) --------------------------------------

# On: PUT, PATCH and DELETE without an If-Match header are refused with 428 (clients must send the ETag they read).
REQUIRE_IF_MATCH = env_bool("REQUIRE_IF_MATCH", False)

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

# --- Interoperability: FHIR R4B and CDS Hooks 2.0 (interop) ------------------------------------------------

# Base of ClinRec's own identifier and code systems in FHIR (e.g. `<base>/procedure` for catalogue ids).
FHIR_SYSTEM_BASE = env("FHIR_SYSTEM_BASE", "https://clinrec.example.org/fhir/sid").rstrip("/")
FHIR_PAGE_SIZE = env_int("FHIR_PAGE_SIZE", 50)
FHIR_MAX_PAGE_SIZE = env_int("FHIR_MAX_PAGE_SIZE", 500)
# The public URL of ClinRec as EHRs call it (e.g. https://clinrec.hospital.org); the `aud` of a CDS Hooks JWT
# must be a service URL under it. Empty: taken from the request (right unless a proxy rewrites the host).
CDS_PUBLIC_BASE_URL = env("CDS_PUBLIC_BASE_URL").rstrip("/")
# Rules whose cards are `warning` rather than `info`.
CDS_WARNING_RULES = env_list("CDS_WARNING_RULES")
# Seconds a JWKS fetched from an issuer's URL is reused before it is fetched again.
CDS_JWKS_CACHE_SECONDS = env_int("CDS_JWKS_CACHE_SECONDS", 300)
CDS_JWKS_TIMEOUT_SECONDS = env_float("CDS_JWKS_TIMEOUT_SECONDS", 5.0)
# Browsers (EHR web front ends) allowed to call CDS Hooks and FHIR; none by default.
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_URLS_REGEX = r"^/(cds-services|fhir)(/.*)?$"
# Added to the hooks above (not replacing them), before the ones that read every path.
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"].insert(1, "interop.openapi.fhir_operation_paths")

# --- Development conveniences --------------------------------------------------------------------------------

DEV_ADMIN_USERNAME = env("DEV_ADMIN_USERNAME", "admin")
DEV_ADMIN_PASSWORD = env("DEV_ADMIN_PASSWORD", "admin")

# --- workspace: the admin's site-wide templates (favicon, the stylesheet fitting it to a laptop) -----------
# A directory ahead of the apps: clinrec/templates/admin/base_site.html extends the admin's own.
TEMPLATES[0]["DIRS"] = [BASE_DIR / "clinrec" / "templates"]

# --- Audit trail, patient merge, login lockout (audit) -------------------------------------------------------

# django-simple-history records every write of the clinical models and users (who, when, from where, what
# changed); `audit` serves a patient's history. django-axes limits failed logins; it must come last.
INSTALLED_APPS += ["simple_history", "audit", "axes"]
# HistoryRequestMiddleware lets a historical record see the request (its user, as DRF authenticated it, and
# the client address); AxesMiddleware turns a lockout into the lockout response, so it is the last one.
MIDDLEWARE += ["simple_history.middleware.HistoryRequestMiddleware", "axes.middleware.AxesMiddleware"]
# Axes first: a locked-out username/address is refused before its password is even checked.
AUTHENTICATION_BACKENDS = ["security.lockout.LockoutBackend", "django.contrib.auth.backends.ModelBackend"]

# After AXES_FAILURE_LIMIT failed logins for one username from one address, that pair is refused (429) for
# AXES_COOLOFF_MINUTES, even with the right password; a success before the limit resets its count.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
if not 1 <= AXES_FAILURE_LIMIT <= 10:
    raise ImproperlyConfigured(f"AXES_FAILURE_LIMIT must be between 1 and 10, not {AXES_FAILURE_LIMIT}.")
# Password spraying (one address, many usernames) is stopped by a separate, higher limit per address, so one
# clinician mistyping never locks out a whole ward behind one NAT address (security/lockout.py).
AXES_IP_FAILURE_LIMIT = env_int("AXES_IP_FAILURE_LIMIT", 50)
AXES_COOLOFF_MINUTES = env_int("AXES_COOLOFF_MINUTES", 15)
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = "security.lockout.LockoutHandler"
AXES_LOCKOUT_CALLABLE = "security.lockout.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False  # clinrec.security logs the events once, in its own words (security/lockout.py)
# The client address is REMOTE_ADDR. Behind a reverse proxy, set CLIENT_IP_PROXY_COUNT to the number of
# proxies that append to X-Forwarded-For (the address is then read from it, counting from the right, so a
# client cannot forge it); the same address is recorded in the audit trail.
CLIENT_IP_PROXY_COUNT = env_int("CLIENT_IP_PROXY_COUNT", 0)
if CLIENT_IP_PROXY_COUNT:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    AXES_IPWARE_PROXY_COUNT = CLIENT_IP_PROXY_COUNT
    AXES_IPWARE_PROXY_ORDER = "right-most"
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
LOGGING["loggers"]["clinrec.security"] = {"handlers": ["console"], "level": "INFO", "propagate": False}
# History is evidence: the admin shows it but offers no "revert" (which would write over the record from it).
SIMPLE_HISTORY_REVERT_DISABLED = True

# --- Performance (issue 12): reads without transaction, persistent connections, population evaluation ----------

# GET, HEAD and OPTIONS run outside the request transaction (writes keep ATOMIC_REQUESTS): must stay last.
MIDDLEWARE += ["clinrec.read_transactions.ReadsOutsideTransactionMiddleware"]
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Persistent SQLite connections (CONN_MAX_AGE above, with health checks) are safe: Django ends every
    # request's transaction before reusing a connection, and IMMEDIATE only concerns transactions, which
    # reads no longer open. WAL lets readers and the one writer proceed at once (readers never block the
    # write lock) and keeps durability with synchronous=FULL, SQLite's default. journal_mode is stored in the
    # file; on an in-memory database (tests) SQLite keeps "memory" and ignores it.
    DATABASES["default"]["OPTIONS"]["init_command"] = "PRAGMA journal_mode=WAL;"

# The chunk task of a population run lives beside recommendations/tasks.py (see that module's docstring).
CELERY_IMPORTS = ["recommendations.population_tasks"]
# Patients per chunk (one Celery task each) of `POST /api/v1/evaluations/` and `manage.py evaluate_all`.
POPULATION_CHUNK_SIZE = env_int("POPULATION_CHUNK_SIZE", 5000)

# --- Event consumers, HL7 v2 over MLLP, FHIR push (issue 10) ---------------------------------------------------

# The consumers an event is delivered to, by dotted path to a class (see recommendations/consumers/); the HL7 v2
# and FHIR consumers join when their endpoint is set. Each delivery is retried EVENT_HANDLER_MAX_RETRIES times.
EVENT_CONSUMERS = env_list(
    "EVENT_CONSUMERS",
    "recommendations.consumers.log.LogConsumer,"
    "recommendations.consumers.email.EmailConsumer,"
    "recommendations.consumers.analytics.AnalyticsConsumer",
)
# HL7 v2.5.1 ORM^O01 orders over MLLP to the hospital's integration engine; off when the host is unset.
HL7_MLLP_HOST = env("HL7_MLLP_HOST")
HL7_MLLP_PORT = env_int("HL7_MLLP_PORT", 2575)
HL7_MLLP_TIMEOUT_SECONDS = env_float("HL7_MLLP_TIMEOUT_SECONDS", 10.0)
HL7_SENDING_APPLICATION = env("HL7_SENDING_APPLICATION", "CLINREC")
HL7_SENDING_FACILITY = env("HL7_SENDING_FACILITY", "CLINREC")
HL7_RECEIVING_APPLICATION = env("HL7_RECEIVING_APPLICATION", "ORDERS")
HL7_RECEIVING_FACILITY = env("HL7_RECEIVING_FACILITY", "HOSPITAL")
HL7_PROCESSING_ID = env("HL7_PROCESSING_ID", "P")  # P production, T training, D debugging
if HL7_MLLP_HOST:
    EVENT_CONSUMERS.append("interop.hl7v2.consumer.Hl7v2Consumer")
# FHIR R4B ServiceRequests pushed (conditional PUT by identifier) to another FHIR server; off when unset.
FHIR_PUSH_URL = env("FHIR_PUSH_URL")
FHIR_PUSH_TOKEN = env("FHIR_PUSH_TOKEN")
FHIR_PUSH_TIMEOUT_SECONDS = env_float("FHIR_PUSH_TIMEOUT_SECONDS", 10.0)
if FHIR_PUSH_URL:
    EVENT_CONSUMERS.append("interop.fhir.push.FhirPushConsumer")
