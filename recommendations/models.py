"""Recommendation definitions, recommendations made to patients, rule sets, and what follows each one.

`RuleSet` is a version of the parameters of every engine rule; exactly one is active, the others stay
readable. A `PatientRecommendation` keeps its `provenance` (which rule, which rule-set version, on which facts,
or who recorded it by hand), so it can be explained long after the thresholds changed.

`RecommendationEvent` is the transactional outbox: it is written in the same transaction as the
`PatientRecommendation` it announces and published to the broker after the commit. `Notification` and
`RecommendationDailyCount` are what the event consumer produces.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from clinrec.history import audited_history
from clinrec.identifiers import FhirIdModelField
from clinrec.validators import free_text, single_line_text
from recommendations.definitions import RULE_CHOICES


class Recommendation(models.Model):
    """A care programme ClinRec can recommend, e.g. "Physical Therapy"; `rule` links it to the engine."""

    id = FhirIdModelField(primary_key=True)
    name = models.CharField(max_length=200, validators=[single_line_text])
    description = models.TextField(blank=True, default="", validators=[free_text])
    rule = models.CharField(
        max_length=64,
        unique=True,
        null=True,
        blank=True,
        choices=RULE_CHOICES,
        validators=[single_line_text],
        help_text="The engine rule that yields this recommendation; empty: manual only (no rule makes it).",
    )

    history = audited_history()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def manual_only(self) -> bool:
        """No engine rule yields it: only a person (or a CDS card accepted) recommends it."""
        return not self.rule


class RuleSet(models.Model):
    """One version of the parameters of every engine rule (`{"<rule>": {"enabled": ..., ...}}`).

    Versions are never edited: a change is saved as a new version, so a recommendation's provenance always
    points at the thresholds it was made with. Exactly one version is active (a partial unique constraint);
    `activated_*` describe its latest activation, and `RuleSetActivation` keeps every one.
    """

    version = models.PositiveIntegerField(primary_key=True)
    parameters = models.JSONField()
    active = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True, default="", help_text="What this version changes, and why.")
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    activated_at = models.DateTimeField(null=True, blank=True)
    activation_reason = models.TextField(blank=True, default="")

    history = audited_history()

    class Meta:
        ordering = ["-version"]
        verbose_name = "rule set"
        constraints = [
            models.UniqueConstraint(
                fields=["active"],
                condition=models.Q(active=True),
                name="ruleset_one_active",
                violation_error_message="Another rule-set version is already active.",
            ),
        ]

    def __str__(self) -> str:
        return f"rule set v{self.version}{' (active)' if self.active else ''}"


class RuleSetActivation(models.Model):
    """The record of one activation of a rule-set version: who, when and why."""

    rule_set = models.ForeignKey(RuleSet, on_delete=models.PROTECT, related_name="activations")
    previous_version = models.PositiveIntegerField(null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    activated_at = models.DateTimeField(default=timezone.now)
    reason = models.TextField()

    class Meta:
        ordering = ["-activated_at", "-id"]
        verbose_name = "rule-set activation"

    def __str__(self) -> str:
        return f"v{self.rule_set_id} activated at {self.activated_at:%Y-%m-%d %H:%M}"


class RecommendationSource(models.TextChoices):
    RULE = "rule", "Rule"
    MANUAL = "manual", "Manual"
    CDS = "cds", "CDS Hooks (accepted card)"


class RecommendationStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"
    DISMISSED = "dismissed", "Dismissed"
    # Collapsed by a patient merge: the target already had this programme active (the older link was kept).
    MERGED = "merged", "Merged"


class PatientRecommendation(models.Model):
    """A recommendation made to a patient, by a rule or by hand, and where it stands."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="recommendations")
    recommendation = models.ForeignKey(Recommendation, on_delete=models.PROTECT, related_name="made")
    recommended_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=6, choices=RecommendationSource.choices, default=RecommendationSource.MANUAL)
    reason = models.TextField(blank=True, default="", validators=[free_text])
    status = models.CharField(max_length=9, choices=RecommendationStatus.choices, default=RecommendationStatus.ACTIVE)
    provenance = models.JSONField(
        default=dict,
        blank=True,
        help_text=(
            "Why it exists: for a rule, {source, rule, rule_set, facts, engine_version}; "
            "by hand, {source, recorded_by}. Written once, never rewritten."
        ),
    )

    history = audited_history()

    class Meta:
        ordering = ["-recommended_at", "-id"]
        verbose_name = "patient recommendation"
        indexes = [
            models.Index(fields=["patient", "status"], name="patrec_patient_status_idx"),
            models.Index(fields=["recommendation", "status"], name="patrec_recommendation_idx"),
        ]
        constraints = [
            # Backs idempotent evaluation: however many evaluations race, one active link per programme.
            models.UniqueConstraint(
                fields=["patient", "recommendation"],
                condition=models.Q(status="active"),
                name="patrec_one_active_per_patient",
                violation_error_message="This patient already has this recommendation active.",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=RecommendationStatus.values), name="patrec_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(source__in=RecommendationSource.values), name="patrec_source_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.recommendation.name} ({self.get_status_display().lower()})"


class EventStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PUBLISHED = "published", "Published"
    CONSUMED = "consumed", "Consumed"
    FAILED = "failed", "Failed"


class RecommendationEvent(models.Model):
    """Outbox record announcing a new patient recommendation; published after commit, consumed by the worker.

    The patient and recommendation ids are copied, not foreign keys, so the audit trail outlives the link.
    """

    TYPE_CREATED = "recommendation.created"
    # A recommendation was dismissed or completed: the order systems cancel or complete their order.
    TYPE_STATUS_CHANGED = "recommendation.status_changed"

    event_type = models.CharField(max_length=64, default=TYPE_CREATED)
    patient_id = models.CharField(max_length=64, db_index=True)
    recommendation_id = models.CharField(max_length=64)
    patient_recommendation = models.ForeignKey(
        PatientRecommendation, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=9, choices=EventStatus.choices, default=EventStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="Publish attempts, then handling attempts.")
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    consumed_at = models.DateTimeField(null=True, blank=True)
    publish_count = models.PositiveIntegerField(
        default=0, help_text="Publishes the broker confirmed; more than one means the event was re-published."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "recommendation event"
        indexes = [
            models.Index(fields=["status", "created_at"], name="event_status_idx"),
            # The relay looks for events published long ago and still not consumed.
            models.Index(fields=["status", "published_at"], name="event_status_published_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=EventStatus.values), name="event_status_valid"),
        ]

    def __str__(self) -> str:
        return f"event {self.pk} {self.event_type} {self.patient_id}/{self.recommendation_id} ({self.status})"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class Delivery(models.Model):
    """One consumer's handling of one event (log, e-mail, analytics, HL7 v2, FHIR push): each retried on its own.

    `claimed_at` is set, and committed, before an at-most-once consumer (the e-mail) acts: a delivery found
    claimed on a retry may already have had its effect, so it is not done again (see recommendations/consumers).
    """

    event = models.ForeignKey(RecommendationEvent, on_delete=models.CASCADE, related_name="deliveries")
    consumer = models.CharField(max_length=32)
    status = models.CharField(max_length=9, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["event_id", "id"]
        verbose_name_plural = "deliveries"
        indexes = [models.Index(fields=["consumer", "status"], name="delivery_consumer_status_idx")]
        constraints = [
            models.UniqueConstraint(fields=["event", "consumer"], name="delivery_one_per_event_consumer"),
            models.CheckConstraint(condition=models.Q(status__in=DeliveryStatus.values), name="delivery_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.consumer} of event {self.event_id} ({self.status})"


class Notification(models.Model):
    """An e-mail sent to the care team about one event; at most one per event, so redelivery sends none."""

    event = models.OneToOneField(RecommendationEvent, on_delete=models.PROTECT, related_name="notification")
    channel = models.CharField(max_length=16, default="email")
    recipients = models.JSONField(default=list)
    subject = models.CharField(max_length=255)
    body = models.TextField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-sent_at", "-id"]

    def __str__(self) -> str:
        return f"{self.channel} for event {self.event_id} to {', '.join(self.recipients)}"


class RecommendationDailyCount(models.Model):
    """Analytics: how many recommendations of one definition were made on one day."""

    recommendation_id = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "recommendation_id"]
        verbose_name = "recommendation daily count"
        constraints = [
            models.UniqueConstraint(fields=["recommendation_id", "day"], name="daily_count_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.recommendation_id} on {self.day}: {self.count}"


class PopulationRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class PopulationRun(models.Model):
    """One set-wise evaluation of many patients (all, or a list), split into chunks that run as tasks.

    Each chunk adds its patients to `done`, its new recommendations to `counts` and its failure, if any, to
    `errors`, under a lock on this row; the run is `done` when every patient is, `failed` when a chunk failed.
    """

    status = models.CharField(max_length=7, choices=PopulationRunStatus.choices, default=PopulationRunStatus.QUEUED)
    evaluated_at = models.DateTimeField(help_text="The instant every patient of the run is evaluated at.")
    rule_set = models.PositiveIntegerField(help_text="The rule-set version every chunk uses (active at the start).")
    patient_ids = models.JSONField(null=True, blank=True, help_text="The patients asked for; null: all.")
    chunk_size = models.PositiveIntegerField()
    total = models.PositiveIntegerField(default=0, help_text="Patients to evaluate.")
    done = models.PositiveIntegerField(default=0, help_text="Patients evaluated (or given up on) so far.")
    chunks = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, help_text="New recommendations per definition id.")
    errors = models.JSONField(default=list, help_text="One entry per failed chunk: its first patient and the error.")
    timings = models.JSONField(default=dict, help_text="Seconds spent reading, evaluating and writing, summed.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "population evaluation"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=PopulationRunStatus.values), name="population_run_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"population run {self.pk} ({self.status}, {self.done}/{self.total})"
