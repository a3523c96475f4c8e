"""Throughput of the event worker: how many events per second ONE Celery worker drains from the real RabbitMQ.

    python scripts/bench_worker.py [--events 3000] [--pool prefork] [--concurrency 2]    (make bench-worker)

It builds a throwaway database (PostgreSQL when DATABASE_URL is set: a database of its own beside that one,
dropped afterwards; else a temporary SQLite file), migrates it, and writes N patients, each with one active
recommendation and its pending `recommendation.created` event, as evaluations do. The real outbox relay
(`publish_pending_events`, publisher confirms) puts them on a queue of the bench's own on CELERY_BROKER_URL
(default: RabbitMQ on 127.0.0.1 as guest), deleted at the end. Then it starts one real `celery worker`
process with the project's settings (pool and concurrency as configured unless given; DEBUG off, the
locmem e-mail backend, REDIS_URL passed through), polls the database until every event is consumed, checks
that each was handled once (its deliveries, one e-mail notification, one count), and prints events/s from
the first to the last consumed (`consumed_at`), the wall time from the worker's start, and the settings used.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"


def throwaway_database(tag: str) -> tuple[str, Path | None]:
    """The URL of a database of the bench's own (and the temporary folder of a SQLite one)."""
    configured = os.environ.get("DATABASE_URL", "").strip()
    if configured:
        parsed = urlparse(configured)
        return urlunparse(parsed._replace(path=f"/{parsed.path.lstrip('/') or 'clinrec'}_bench_worker_{tag}")), None
    folder = Path(tempfile.mkdtemp(prefix="clinrec-bench-worker-"))
    return f"sqlite:///{folder / 'bench.sqlite3'}", folder


def postgres_admin(url: str, statement: str) -> None:
    """CREATE or DROP DATABASE, run from the server's `postgres` database (not inside a transaction)."""
    import psycopg

    parsed = urlparse(url)
    with psycopg.connect(urlunparse(parsed._replace(path="/postgres")), autocommit=True) as admin:
        admin.execute(statement)


def build_events(count: int) -> None:
    """N patients (every other one with an e-mail), each with an active recommendation and its pending event."""
    from django.db import transaction

    from patients.models import Patient
    from recommendations.models import PatientRecommendation, Recommendation, RecommendationEvent
    from recommendations.services.outbox import _event_payload

    definitions = list(Recommendation.objects.order_by("pk"))
    with transaction.atomic():
        patients = Patient.objects.bulk_create(
            Patient(id=f"w{n}", name=f"Patient {n}", email=f"w{n}@example.org" if n % 2 else "") for n in range(count)
        )
        links = PatientRecommendation.objects.bulk_create(
            PatientRecommendation(
                patient=patient, recommendation=definitions[n % len(definitions)], source="rule", reason="bench"
            )
            for n, patient in enumerate(patients)
        )
        RecommendationEvent.objects.bulk_create(
            RecommendationEvent(
                patient_id=link.patient_id,
                recommendation_id=link.recommendation_id,
                patient_recommendation=link,
                payload=_event_payload(link),
            )
            for link in links
        )


def delete_queue(broker_url: str, queue: str) -> None:
    from kombu import Connection

    with Connection(broker_url, connect_timeout=5) as amqp:
        channel = amqp.default_channel
        channel.queue_delete(queue)
        channel.exchange_delete(queue)


def start_worker(env: dict[str, str], args: argparse.Namespace, queue: str, log: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "clinrec",
        "worker",
        f"--loglevel={args.loglevel}",
        f"--queues={queue}",
        f"--hostname={queue}@%h",
        "--without-mingle",
        "--without-gossip",
    ]
    if args.pool:
        command.append(f"--pool={args.pool}")
    if args.concurrency:
        command.append(f"--concurrency={args.concurrency}")
    if args.prefetch_multiplier:
        command.append(f"--prefetch-multiplier={args.prefetch_multiplier}")
    with log.open("w") as output:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_worker(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)  # its own session: the pool's children stop with it
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def wait_for_consumption(count: int, worker: subprocess.Popen, timeout: float, log: Path) -> float:
    """Poll the database until every event is consumed; returns the wall time from the worker's start."""
    from django.db import connection

    from recommendations.models import EventStatus, RecommendationEvent

    started = time.monotonic()
    while True:
        done = RecommendationEvent.objects.filter(status__in=[EventStatus.CONSUMED, EventStatus.FAILED]).count()
        connection.close()  # SQLite: no read snapshot kept open between polls
        if done >= count:
            return time.monotonic() - started
        if worker.poll() is not None:
            raise SystemExit(
                f"The worker stopped (exit {worker.returncode}) after {done} events:\n{log.read_text()[-3000:]}"
            )
        if time.monotonic() - started > timeout:
            raise SystemExit(f"Only {done} of {count} events consumed after {timeout:.0f} s; worker log: {log}")
        time.sleep(0.2)


def check_each_event_handled_once(count: int) -> dict[str, int]:
    from django.db.models import Sum

    from recommendations.consumers import enabled_consumers
    from recommendations.models import (
        Delivery,
        DeliveryStatus,
        EventStatus,
        Notification,
        RecommendationDailyCount,
        RecommendationEvent,
    )

    figures = {
        "consumed": RecommendationEvent.objects.filter(status=EventStatus.CONSUMED).count(),
        "failed": RecommendationEvent.objects.filter(status=EventStatus.FAILED).count(),
        "deliveries": Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count(),
        "notifications": Notification.objects.count(),
        "counted": RecommendationDailyCount.objects.aggregate(total=Sum("count"))["total"] or 0,
    }
    expected = {
        "consumed": count,
        "failed": 0,
        "deliveries": count * len(enabled_consumers()),
        "notifications": count,
        "counted": count,
    }
    if figures != expected:
        raise SystemExit(f"Events not handled exactly once: {figures}, expected {expected}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--pool", default="", help="the worker's --pool (default: as configured)")
    parser.add_argument(
        "--concurrency", type=int, default=0, help="the worker's --concurrency (default: as configured)"
    )
    parser.add_argument("--prefetch-multiplier", type=int, default=0, help="(default: as configured)")
    parser.add_argument("--loglevel", default="INFO", help="the worker's --loglevel (INFO, as `make run-consumer`)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the worker")
    args = parser.parse_args()

    tag = uuid.uuid4().hex[:8]
    database_url, sqlite_folder = throwaway_database(tag)
    broker_url = os.environ.get("CELERY_BROKER_URL", "").strip() or DEFAULT_BROKER
    queue = f"clinrec-bench-worker-{tag}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY")
        or f"bench-worker-{uuid.uuid4().hex}{uuid.uuid4().hex}",
        "DJANGO_SETTINGS_MODULE": "clinrec.settings",
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    worker = None
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from recommendations.consumers import enabled_consumers
    from recommendations.services import publish_pending_events

    log = Path(tempfile.gettempdir()) / f"{queue}.log"
    if sqlite_folder is None:  # after django.setup(), which connects nowhere: nothing to drop if it fails
        postgres_admin(database_url, f'CREATE DATABASE "{urlparse(database_url).path.lstrip("/")}"')
    try:
        call_command("migrate", verbosity=0)
        build_events(args.events)
        started = time.monotonic()
        published = publish_pending_events()
        publish_seconds = time.monotonic() - started
        if published != args.events:
            raise SystemExit(
                f"The relay published {published} of {args.events} events (is RabbitMQ up at {broker_url}?)"
            )
        connection.close()

        worker = start_worker(env, args, queue, log)
        wall = wait_for_consumption(args.events, worker, args.timeout, log)
        stop_worker(worker)
        figures = check_each_event_handled_once(args.events)

        from django.db.models import Max, Min

        from recommendations.models import RecommendationEvent

        span = RecommendationEvent.objects.aggregate(first=Min("consumed_at"), last=Max("consumed_at"))
        seconds = (span["last"] - span["first"]).total_seconds()
        from clinrec.celery import app

        pool = args.pool or app.conf.worker_pool
        concurrency = args.concurrency or app.conf.worker_concurrency or os.cpu_count()
        prefetch = args.prefetch_multiplier or app.conf.worker_prefetch_multiplier
        batch = getattr(settings, "EVENT_BATCH_SIZE", 1)  # 1: a checkout that sends one event per message
        rate = (args.events - 1) / seconds if seconds else float("inf")
        print(f"database     {connection.vendor} ({'file' if sqlite_folder else 'throwaway database'})")
        print(f"cache        {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}")
        print(f"consumers    {', '.join(enabled_consumers())}")
        print(
            f"worker       pool={pool} concurrency={concurrency} prefetch_multiplier={prefetch} "
            f"acks_late={app.conf.task_acks_late} event_batch_size={batch} loglevel={args.loglevel}"
        )
        print(f"published    {published} events in {publish_seconds:.2f} s (outbox relay, publisher confirms)")
        print(f"handled      {figures}")
        print(f"wall         {wall:.2f} s from the worker's start to the last event consumed")
        print(f"throughput   {rate:.1f} events/s (first to last consumed)")
        log.unlink(missing_ok=True)  # kept only when something went wrong
    finally:
        if worker is not None:
            stop_worker(worker)
        connection.close()
        try:
            delete_queue(broker_url, queue)
        except Exception as exc:  # noqa: BLE001 - the broker may be the reason we are here
            print(f"could not delete queue {queue}: {exc!r}", file=sys.stderr)
        if sqlite_folder is not None:
            shutil.rmtree(sqlite_folder, ignore_errors=True)
        else:
            postgres_admin(
                database_url, f'DROP DATABASE IF EXISTS "{urlparse(database_url).path.lstrip("/")}" WITH (FORCE)'
            )


if __name__ == "__main__":
    main()
