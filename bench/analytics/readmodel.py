"""analytics' read model at scale, written straight into PostgreSQL by ``generate_series``: a
year of leads from ``start``, one in ten an MQL and on down the waterfall, their touches,
assignments and feedback, as the consumer would have written them, and the deals' credits
as its writer keeps them. Lead ``i`` is ``'b' || i``."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from analytics.adapters.repository import AnalyticsUnitOfWork
from leadrelay_shared.db import make_engine

# A year of leads written as the consumer would: ids and times from the row number, choices by
# multiplicative hashing, so every run writes the same read model.
FILL = [
    """
    INSERT INTO analytics.leads (lead_id, first_at, origin, source, campaign, owner_id, team_id,
                                 territory, segment, assigned_at, stage, stage_at, stage_order)
    SELECT 'b' || i, CAST(:start AS timestamptz) + (i * interval '31.5 seconds'),
           CASE WHEN i % 9 = 0 THEN 'sales' ELSE 'marketing' END,
           'source-' || (i::bigint * 2654435761 % 8), 'campaign-' || (i::bigint * 40503 % 20),
           'rep-' || (i * 97 % 30), 'team-' || (i * 97 % 30 / 10), 'territory-' || (i % 4),
           (ARRAY['smb', 'mid', 'enterprise'])[1 + i % 3],
           CAST(:start AS timestamptz) + (i * interval '31.5 seconds') + interval '2 days',
           'inquiry', CAST(:start AS timestamptz) + (i * interval '31.5 seconds'), 0
    FROM generate_series(1, :leads) AS i
    """,
    # the waterfall: inquiry for all, then each step for a share, a fixed delay after the last
    """
    INSERT INTO analytics.stage_changes (event_id, lead_id, at, cycle, from_stage, to_stage,
        actor, funnel_rank, next_at, source, campaign, segment, territory, team_id, owner_id)
    SELECT md5('s' || l.lead_id || w.stage)::uuid, l.lead_id,
           l.first_at + w.after, 1, w.came_from, w.stage, 'bench', w.rank,
           CASE WHEN nx.stage IS NOT NULL AND (hashtext(l.lead_id) & 1023) < nx.keep
                THEN l.first_at + nx.after END,
           l.source, l.campaign, l.segment, l.territory, l.team_id, l.owner_id
    FROM analytics.leads l
    JOIN (VALUES (0, 'inquiry', NULL, interval '0', 1024),
                 (1, 'mql', 'inquiry', interval '2 days', 102),
                 (2, 'sal', 'mql', interval '3 days', 87),
                 (3, 'sql', 'sal', interval '8 days', 52),
                 (4, 'opportunity', 'sql', interval '11 days', 52),
                 (5, 'won', 'opportunity', interval '41 days', 16))
         AS w(rank, stage, came_from, after, keep)
      ON (hashtext(l.lead_id) & 1023) < w.keep
    LEFT JOIN (VALUES (0, 'mql', interval '2 days', 102), (1, 'sal', interval '3 days', 87),
                      (2, 'sql', interval '8 days', 52), (3, 'opportunity', interval '11 days', 52),
                      (4, 'won', interval '41 days', 16)) AS nx(rank, stage, after, keep)
      ON nx.rank = w.rank
    """,
    """
    UPDATE analytics.leads l SET stage = s.to_stage, stage_at = s.at, stage_order = s.funnel_rank
    FROM (SELECT DISTINCT ON (lead_id) lead_id, to_stage, at, funnel_rank
          FROM analytics.stage_changes ORDER BY lead_id, at DESC, funnel_rank DESC) s
    WHERE s.lead_id = l.lead_id AND s.to_stage <> 'inquiry'
    """,
    """
    INSERT INTO analytics.assignments (event_id, assignment_id, lead_id, at, stage, owner_id,
                                       team_id, territory, segment, reassignment)
    SELECT md5('a' || lead_id)::uuid, md5('as' || lead_id)::uuid, lead_id, at + interval '1 minute',
           'mql', owner_id, team_id, territory, segment, false
    FROM analytics.stage_changes WHERE to_stage = 'mql'
    """,
    """
    INSERT INTO analytics.feedback (event_id, lead_id, at, feedback, actor_id, opportunity_id,
                                    amount_minor, currency)
    SELECT md5('f' || lead_id || to_stage)::uuid, lead_id, at,
           CASE to_stage WHEN 'won' THEN 'won' ELSE 'converted' END, owner_id, 'opp-' || lead_id,
           1000000, 'EUR'
    FROM analytics.stage_changes WHERE to_stage IN ('opportunity', 'won')
    """,
    # the rest of the ten million: each lead's marketing touches and its owner's calls
    """
    INSERT INTO analytics.touches (event_id, lead_id, at, origin, kind, source, campaign, actor_id)
    SELECT md5('t' || l.lead_id || k)::uuid, l.lead_id, l.first_at + k * interval '7 hours',
           CASE WHEN k = 8 THEN 'sales' ELSE 'marketing' END,
           CASE WHEN k = 0 THEN 'form' WHEN k = 8 THEN 'call' ELSE 'page_view' END,
           l.source, l.campaign, CASE WHEN k = 8 THEN l.owner_id END
    FROM analytics.leads l, generate_series(0, :per_lead - 1) AS k
    """,
]


async def credit(engine: AsyncEngine, chunk: int = 10_000) -> None:
    """The deals' credits, as analytics' writer keeps them, for every lead with a deal."""
    async with engine.connect() as conn:
        leads = list(
            await conn.scalars(
                sa.text("SELECT DISTINCT lead_id FROM analytics.feedback ORDER BY 1")
            )
        )
    for i in range(0, len(leads), chunk):
        async with AnalyticsUnitOfWork(engine) as uow:
            await uow.credit(leads[i : i + chunk])
            await uow.commit()


async def settle(conn: AsyncConnection, timeout_s: float = 300) -> None:
    """Vacuum and analyse until the stage changes' visibility map is set, as on a read model
    that has been running a while: an autovacuum started by the load holds back what a vacuum
    may mark visible, and without it the reports read the table instead of their index. Then
    write the load's pages out, so that no report timed next pays for them."""
    deadline = time.monotonic() + timeout_s
    while True:
        await conn.execute(sa.text("VACUUM ANALYZE"))
        visible = await conn.scalar(
            sa.text(
                "SELECT relallvisible::float / greatest(relpages, 1) FROM pg_class "
                "WHERE oid = 'analytics.stage_changes'::regclass"
            )
        )
        if visible >= 0.99 or time.monotonic() > deadline:
            break
        await asyncio.sleep(2)
    await conn.execute(sa.text("CHECKPOINT"))


async def fill(url: str, leads: int, events: int, start: datetime) -> int:
    """Write the read model; returns how many facts (events) it holds."""
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(FILL[0]), {"start": start, "leads": leads})
            for sql in FILL[1:5]:
                await conn.execute(sa.text(sql))
            counted = 0
            for table in ("stage_changes", "assignments", "feedback"):
                counted += await conn.scalar(sa.text(f"SELECT count(*) FROM analytics.{table}"))
            per_lead = max(1, round((events - counted) / leads))
            await conn.execute(sa.text(FILL[5]), {"per_lead": per_lead})
        await credit(engine)
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await settle(conn)
            total = 0
            for table in ("touches", "stage_changes", "assignments", "feedback"):
                total += await conn.scalar(sa.text(f"SELECT count(*) FROM analytics.{table}"))
        return total
    finally:
        await engine.dispose()
