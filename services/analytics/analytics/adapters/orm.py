"""analytics' read model, in the ``analytics`` schema: facts taken from the events of every
topic, one row per event (its id is the key, so a redelivered event changes nothing), and one
row per lead with what the figures are cut by. Nothing here is personal data: no names, emails,
notes or subjects, only ids, times, stages, codes and amounts."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from leadrelay_shared.db import service_metadata

SCHEMA = "analytics"
metadata = service_metadata(SCHEMA)
TS = sa.DateTime(timezone=True)


DIMENSIONS = ("source", "campaign", "segment", "territory", "team_id", "owner_id")
"""What a figure is cut by, as a stage change keeps it from its lead's rows."""


def _dimensions() -> list[sa.Column[str]]:
    return [sa.Column(name, sa.Text) for name in DIMENSIONS]


def _event_id() -> sa.Column[object]:
    return sa.Column("event_id", pg.UUID(as_uuid=True), primary_key=True)


leads = sa.Table(
    "leads",
    metadata,
    sa.Column("lead_id", sa.Text, primary_key=True),
    # the first thing seen of the lead (its first touch): where it came from
    sa.Column("first_at", TS),
    sa.Column("first_event", pg.UUID(as_uuid=True)),
    sa.Column("origin", sa.Text),  # marketing | sales
    sa.Column("source", sa.Text),
    sa.Column("campaign", sa.Text),
    # its latest assignment: who owns it
    sa.Column("assigned_at", TS),
    sa.Column("assignment_event", pg.UUID(as_uuid=True)),
    sa.Column("owner_id", sa.Text),
    sa.Column("team_id", sa.Text),
    sa.Column("territory", sa.Text),
    sa.Column("segment", sa.Text),
    # its latest stage
    sa.Column("stage", sa.Text),
    sa.Column("stage_at", TS),
    sa.Column("stage_order", sa.Integer),
    sa.Index("ix_leads_stage", "stage"),
)

touches = sa.Table(
    "touches",
    metadata,
    _event_id(),
    sa.Column("lead_id", sa.Text, nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Column("origin", sa.Text, nullable=False),  # marketing | sales
    sa.Column("kind", sa.Text, nullable=False),  # form, an engagement type, call/email/meeting
    sa.Column("source", sa.Text),
    sa.Column("campaign", sa.Text),
    sa.Column("actor_id", sa.Text),  # who in sales did it (activities)
    sa.Index("ix_touches_lead_at", "lead_id", "at"),
)

stage_changes = sa.Table(
    "stage_changes",
    metadata,
    _event_id(),
    sa.Column("lead_id", sa.Text, nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Column("cycle", sa.Integer, nullable=False),
    sa.Column("from_stage", sa.Text),
    sa.Column("to_stage", sa.Text, nullable=False),
    sa.Column("actor", sa.Text),
    # kept by the writer from the lead's other rows, whatever order they came in: the place of
    # a forward stage in the waterfall (null for a side stage), when the lead next entered a
    # later forward stage, and the lead's dimensions, so a waterfall reads one table
    sa.Column("funnel_rank", sa.SmallInteger),
    sa.Column("next_at", TS),
    *_dimensions(),
    sa.Index("ix_stage_changes_at", "at"),
    sa.Index("ix_stage_changes_lead_at", "lead_id", "at"),
    # the entries that went on, for velocity: a small share of all entries, each stage's read
    # from the index alone whatever the cut
    sa.Index(
        "ix_stage_changes_went_on",
        "to_stage",
        "at",
        postgresql_include=["next_at", *DIMENSIONS],
        postgresql_where=sa.text("next_at IS NOT NULL"),
    ),
)


def _counts(name: str, stage: str, count: str, per: str | None = None) -> sa.Table:
    """A table PostgreSQL keeps by trigger: ``count`` per UTC ``per`` (a day or a month, if
    any), stage and the dimensions a figure is cut by; one row per key."""
    keys: list[sa.Column[Any]] = [sa.Column(per, sa.Date, nullable=False)] if per else []
    keys.append(sa.Column(stage, sa.Text, nullable=False))
    return sa.Table(
        name,
        metadata,
        *keys,
        *_dimensions(),
        sa.Column(count, sa.BigInteger, nullable=False),
        sa.UniqueConstraint(
            *(c.name for c in keys),
            *DIMENSIONS,
            name=f"uq_{name}_key",
            postgresql_nulls_not_distinct=True,
        ),
    )


# Derived, kept by PostgreSQL (a trigger on stage_changes, migrations 0004 and 0005): entries
# into each stage per UTC day and per UTC month, for counts over long periods; and (a trigger
# on leads, migration 0005) how many leads are at each stage now, for balances.
stage_days = _counts("stage_days", "to_stage", "entered", per="day")
stage_months = _counts("stage_months", "to_stage", "entered", per="month")
stage_balances = _counts("stage_balances", "stage", "leads")

assignments = sa.Table(
    "assignments",
    metadata,
    _event_id(),
    sa.Column("assignment_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("lead_id", sa.Text, nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Column("stage", sa.Text, nullable=False),
    sa.Column("owner_id", sa.Text, nullable=False),
    sa.Column("team_id", sa.Text, nullable=False),
    sa.Column("territory", sa.Text),
    sa.Column("segment", sa.Text),
    sa.Column("reassignment", sa.Boolean, nullable=False),
    sa.Index("ix_assignments_at", "at"),
    sa.Index("ix_assignments_lead_at", "lead_id", "at"),
)

breaches = sa.Table(
    "breaches",
    metadata,
    _event_id(),
    sa.Column("lead_id", sa.Text, nullable=False),
    sa.Column("assignment_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Column("owner_id", sa.Text, nullable=False),
    sa.Column("team_id", sa.Text, nullable=False),
    sa.Column("policy_id", sa.Text, nullable=False),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("due_at", TS, nullable=False),
    sa.Index("ix_breaches_at", "at"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    _event_id(),
    sa.Column("lead_id", sa.Text, nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Column("feedback", sa.Text, nullable=False),
    sa.Column("reason_code", sa.Text),
    sa.Column("actor_id", sa.Text),
    sa.Column("opportunity_id", sa.Text),
    sa.Column("amount_minor", sa.BigInteger),  # in the currency's minor unit (cents)
    sa.Column("currency", sa.Text),
    sa.Index("ix_feedback_at", "at"),
    sa.Index("ix_feedback_lead_at", "lead_id", "at"),
)

# Derived from the facts above, not from events: each deal's amount credited under every
# attribution model, by source and by campaign, kept by the writer for the leads a batch touches.
credits = sa.Table(
    "credits",
    metadata,
    sa.Column("deal_event", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("model", sa.Text, primary_key=True),
    sa.Column("by", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("lead_id", sa.Text, nullable=False, index=True),
    sa.Column("at", TS, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # pipeline | revenue
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Index("ix_credits_model_by_at", "model", "by", "at"),
)

FACTS = (touches, stage_changes, assignments, breaches, feedback)
