"""Writes with a business meaning for recommendations, one concern per module.

- `evaluation`: run the engine on a patient and record what it finds, or preview it (a dry run);
- `rule_sets`: versions of the rules' parameters, and activating one;
- `provenance`: why a recommendation exists (rule, rule set, facts, engine; or who recorded it);
- `impact`: what a rule-set version would change across the population;
- `population`: evaluate the whole population (or a list) set-wise, in chunks run as tasks;
- `outbox`: record a recommendation with its event, and publish events to the broker;
- `consumer`: what the worker does with an event: one delivery per consumer (recommendations/consumers);
- `deliveries`: running, failing and requeueing one consumer's delivery of one event;
- `merge`: fold a duplicate patient into another (history, links, events), leaving a tombstone.

The life of an event: `record_recommendation` writes the patient recommendation and its event (the outbox
row) in one transaction; after the commit `publish_pending_events` sends it to the broker and marks it
`published` once the broker confirmed it; the worker runs `handle_recommendation_events` (a batch of events per
message), which writes one delivery per enabled consumer and runs them, a failed one retried as a task of its own
(`deliver_event`); the event is `consumed` once all are delivered, and a consumed event is not handled again.
The relay (the same service, run by beat) sends what is still pending and publishes again what was published
but never consumed.
"""

from recommendations.services.consumer import (
    count_recommendation,
    handle_recommendation_event,
    handle_recommendation_events,
    notify_care_team,
    record_event_failure,
)
from recommendations.services.deliveries import (
    attempt_delivery,
    deliver_event,
    record_delivery_failure,
    requeue_deliveries,
)
from recommendations.services.evaluation import (
    NOTHING_TO_RECOMMEND,
    EvaluatedRecommendation,
    Evaluation,
    definitions_for_rules,
    evaluate_patient,
    get_engine,
    preview_patient,
)
from recommendations.services.impact import RuleSetImpact, rule_set_impact
from recommendations.services.merge import MergePlan, merge_patients, plan_merge
from recommendations.services.outbox import (
    announce_recommendation,
    announce_status_change,
    change_recommendation_status,
    publish_pending_events,
    record_recommendation,
    requeue_failed_events,
)
from recommendations.services.population import (
    dispatch_population_run,
    evaluate_chunk,
    start_population_run,
)
from recommendations.services.provenance import manual_provenance, record_manual_recommendation
from recommendations.services.rule_sets import (
    RuleSetError,
    activate_rule_set,
    active_rule_set,
    create_rule_set,
    ensure_first_rule_set,
)

__all__ = [
    "NOTHING_TO_RECOMMEND",
    "EvaluatedRecommendation",
    "Evaluation",
    "RuleSetError",
    "RuleSetImpact",
    "activate_rule_set",
    "active_rule_set",
    "create_rule_set",
    "ensure_first_rule_set",
    "MergePlan",
    "manual_provenance",
    "merge_patients",
    "plan_merge",
    "preview_patient",
    "record_manual_recommendation",
    "rule_set_impact",
    "announce_recommendation",
    "announce_status_change",
    "change_recommendation_status",
    "attempt_delivery",
    "deliver_event",
    "record_delivery_failure",
    "requeue_deliveries",
    "count_recommendation",
    "dispatch_population_run",
    "evaluate_chunk",
    "start_population_run",
    "definitions_for_rules",
    "evaluate_patient",
    "get_engine",
    "handle_recommendation_event",
    "handle_recommendation_events",
    "notify_care_team",
    "publish_pending_events",
    "record_event_failure",
    "record_recommendation",
    "requeue_failed_events",
]
