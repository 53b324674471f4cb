"""scoring: the timeline keeps what a what-if needs to decide each event again.

Entries written before this revision said an engagement's type, a form's source system and
sales' feedback only in their summary; they get them as fields. A partial index finds the
events of a window.

Revision ID: 0005
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None
SCHEMA = "scoring"
INPUTS = "kind IN ('form_submitted', 'engagement', 'feedback')"


def upgrade() -> None:
    t = f"{SCHEMA}.timeline"
    op.execute(
        f"""UPDATE {t} SET detail = detail || jsonb_build_object('engagement_type',
            replace(summary, ' ', '_'))
            WHERE kind = 'engagement' AND NOT detail ? 'engagement_type'"""
    )
    op.execute(
        f"""UPDATE {t} SET detail = detail || jsonb_build_object('source_system',
            substring(summary FROM '^form fill from (.*)$'))
            WHERE kind = 'form_submitted' AND NOT detail ? 'source_system'"""
    )
    op.execute(
        f"""UPDATE {t} SET detail = detail || jsonb_build_object('feedback',
            substring(summary FROM '^sales feedback: ([a-z]+)'))
            WHERE kind = 'feedback' AND NOT detail ? 'feedback'"""
    )
    op.execute(f"CREATE INDEX ix_timeline_inputs ON {t} (at) INCLUDE (lead_id) WHERE {INPUTS}")


def downgrade() -> None:
    op.execute(f"DROP INDEX {SCHEMA}.ix_timeline_inputs")
