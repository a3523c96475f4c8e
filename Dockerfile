# ClinRec image: the API (gunicorn), the Celery worker and beat all run from it (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

RUN groupadd --system clinrec && useradd --system --gid clinrec --home-dir /app --shell /usr/sbin/nologin clinrec

COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .

# Static files (admin, browsable API, Swagger UI) are collected at build time and served by whitenoise.
# The key below only exists for this build step; the container refuses to start without a real one.
RUN DJANGO_ENV=production DJANGO_SECRET_KEY=collectstatic-build-step-only DJANGO_ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput --verbosity 0

# The code stays owned by root: the process cannot rewrite what it runs.
USER clinrec

EXPOSE 8000

CMD ["gunicorn", "clinrec.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "60", "--access-logfile", "-"]
