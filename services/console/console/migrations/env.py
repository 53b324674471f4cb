from alembic import context

from console.adapters.orm import metadata
from leadrelay_shared.migrate import run_env

run_env(context, metadata)
