from alembic import context

from intake.adapters.orm import metadata
from leadrelay_shared.migrate import run_env

run_env(context, metadata)
