from alembic import context

from leadrelay_shared.migrate import run_env
from scoring.adapters.orm import metadata

run_env(context, metadata)
