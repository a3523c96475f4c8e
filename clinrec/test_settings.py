"""Settings for the test suite: the environment-driven settings, with fast hashing and captured e-mail."""

from clinrec.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tests control eagerness themselves; the integration tests point Celery at the real RabbitMQ.
CELERY_TASK_ALWAYS_EAGER = True
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
# No collectstatic in tests: serve static files from the apps.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
