"""Stored leads for the scale runs, written straight into the services' tables with SQL.

Leads ``seed-<from>`` to ``seed-<to - 1>`` get what a real lead leaves behind: scoring's profile
(with its snapshot, hits and fit explanation), two timeline rows, a stage-history row and two
processed-event ids; for the 55 % that were routed, router's assignment (with its decision
record) and current owner, and a worked SLA clock. Stage dates are recent, so none of the
services' timers picks them up during the run. Written in chunks of 50,000 rows per statement,
then analysed, so the planner sees the real sizes.
"""

from __future__ import annotations

import time

import asyncpg

CHUNK = 50_000

LEADS = """
INSERT INTO scoring.leads (lead_id, snapshot, stage, stage_entered_at, fit_score,
    engagement_score, form_fills, model_version, fit_grade, snapshot_at, hits, fit_parts,
    engagement_since, cycle, created_at, updated_at)
SELECT 'seed-' || n,
    jsonb_build_object('lead_id', 'seed-' || n, 'email', 'person' || n || '@company' || (n % 5000)
        || '.example', 'first_name', 'Seed', 'last_name', 'Lead ' || n, 'company',
        'Company ' || (n % 5000), 'title', 'Director of IT', 'country', 'US', 'company_size', 250,
        'industry', 'Software', 'is_free_email', false, 'email_domain',
        'company' || (n % 5000) || '.example'),
    CASE WHEN n % 20 < 11 THEN 'mql' WHEN n % 20 < 14 THEN 'inquiry' ELSE 'nurture' END,
    now() - interval '1 day' * (n % 10), 60 + n % 30, 30 + n % 50, 1, 'default-2026.11',
    CASE WHEN n % 20 < 11 THEN 'B' ELSE 'C' END, now() - interval '1 day' * (n % 10),
    jsonb_build_array(jsonb_build_object('rule_id', 'eng.form_fill', 'points', 30, 'at',
        now() - interval '1 day' * (n % 10), 'event_id', md5(n::text)::uuid)),
    jsonb_build_array(jsonb_build_object('rule_id', 'fit.business_email', 'points', 20),
        jsonb_build_object('rule_id', 'fit.title.senior', 'points', 25)),
    now() - interval '1 day' * (n % 10), 0, now(), now()
FROM generate_series($1::bigint, $2::bigint - 1) AS n
ON CONFLICT DO NOTHING
"""

TIMELINE = """
INSERT INTO scoring.timeline (lead_id, at, kind, summary, detail, event_id)
SELECT 'seed-' || n, now() - interval '1 day' * (n % 10), k.kind, k.summary,
    jsonb_build_object('points', 30, 'rule_id', 'eng.form_fill'), md5(n::text || k.kind)::uuid
FROM generate_series($1::bigint, $2::bigint - 1) AS n,
    (VALUES ('event', 'form fill'), ('score', 'fit 70 (B), engagement 30')) AS k(kind, summary)
"""

HISTORY = """
INSERT INTO scoring.stage_history (lead_id, cycle, from_stage, to_stage, actor, reasons, at,
    model_version, cause_event_id)
SELECT 'seed-' || n, 0, 'inquiry', 'mql', 'marketing',
    jsonb_build_array(jsonb_build_object('rule_id', 'fast.hand_raise_form', 'message',
        'form fill from a grade B lead')), now() - interval '1 day' * (n % 10),
    'default-2026.11', md5(n::text)::uuid
FROM generate_series($1::bigint, $2::bigint - 1) AS n
"""

PROCESSED = """
INSERT INTO {schema}.processed_events (event_id, event_type, processed_at)
SELECT md5(n::text || k.t)::uuid, k.t, now() - interval '1 day' * (n % 10)
FROM generate_series($1::bigint, $2::bigint - 1) AS n, (VALUES {types}) AS k(t)
WHERE {where}
ON CONFLICT DO NOTHING
"""

ASSIGNMENTS = """
INSERT INTO router.assignments (id, lead_id, stage, owner_id, team_id, strategy, decision,
    config_version, cause_event_id, created_at, kind, lead)
SELECT md5('a' || n)::uuid, 'seed-' || n, 'mql', 'rep-' || (n % 1000), 'team-' || (n % 50),
    'round_robin', jsonb_build_object('summary', 'round robin in team-' || (n % 50),
        'candidates', 20, 'skipped', jsonb_build_array(), 'pointer_before', n % 20,
        'pointer_after', (n + 1) % 20, 'reasons', jsonb_build_array(jsonb_build_object(
            'rule_id', 'territory.match', 'message', 'country US'))),
    'bench', md5(n::text)::uuid, now() - interval '1 day' * (n % 10), 'assign',
    jsonb_build_object('lead_id', 'seed-' || n, 'company', 'Company ' || (n % 5000))
FROM generate_series($1::bigint, $2::bigint - 1) AS n WHERE n % 20 < 11
ON CONFLICT DO NOTHING
"""

OWNERS = """
INSERT INTO router.lead_owners (lead_id, assignment_id, owner_id, team_id, stage, lead,
    assigned_at)
SELECT 'seed-' || n, md5('a' || n)::uuid, 'rep-' || (n % 1000), 'team-' || (n % 50), 'mql',
    jsonb_build_object('lead_id', 'seed-' || n, 'company', 'Company ' || (n % 5000)),
    now() - interval '1 day' * (n % 10)
FROM generate_series($1::bigint, $2::bigint - 1) AS n WHERE n % 20 < 11
ON CONFLICT DO NOTHING
"""

CLOCKS = """
INSERT INTO sla.clocks (id, lead_id, assignment_id, stage, phase, owner_id, owner_name, team_id,
    policy_id, policy_version, zone, status, started_at, deadline_s, due_at, due_text,
    last_level, ended_at, outcome)
SELECT md5('c' || n)::uuid, 'seed-' || n, md5('a' || n)::uuid, 'mql', 0, 'rep-' || (n % 1000),
    'Rep', 'team-' || (n % 50), 'standard-mql', 'bench', 'Europe/Paris', 'worked',
    now() - interval '1 day' * (n % 10), 14400, now() - interval '1 day' * (n % 10)
        + interval '4 hours', 'due in 4 working hours', NULL,
    now() - interval '1 day' * (n % 10) + interval '1 hour', 'call by the owner'
FROM generate_series($1::bigint, $2::bigint - 1) AS n WHERE n % 20 < 11
ON CONFLICT DO NOTHING
"""

STATEMENTS = [
    LEADS,
    TIMELINE,
    HISTORY,
    PROCESSED.format(
        schema="scoring", types="('form.submitted'), ('engagement.recorded')", where="true"
    ),
    ASSIGNMENTS,
    OWNERS,
    PROCESSED.format(schema="router", types="('lead.stage.changed')", where="n % 20 < 11"),
    CLOCKS,
    PROCESSED.format(schema="sla", types="('lead.assigned')", where="n % 20 < 11"),
]


async def seed(database_url: str, start: int, stop: int) -> None:
    """Seed leads ``start`` to ``stop - 1`` (a no-op when ``stop <= start``)."""
    if stop <= start:
        return
    began = time.perf_counter()
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        for low in range(start, stop, CHUNK):
            high = min(stop, low + CHUNK)
            async with conn.transaction():
                for sql in STATEMENTS:
                    await conn.execute(sql, low, high)
        for table in (
            "scoring.leads",
            "scoring.timeline",
            "scoring.stage_history",
            "scoring.processed_events",
            "router.assignments",
            "router.lead_owners",
            "router.processed_events",
            "sla.clocks",
            "sla.processed_events",
        ):
            await conn.execute(f"ANALYZE {table}")
    finally:
        await conn.close()
    print(
        f"  seeded leads {start:,} to {stop:,} in {time.perf_counter() - began:.0f} s", flush=True
    )
