"""Router in the integration tests: its app served in process, and the MQLs it routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from leadrelay_shared.contracts import StageChanged
from leadrelay_shared.migrate import upgrade
from router.adapters import orm
from router.bootstrap import create_app
from router.settings import RouterSettings
from tests import factories
from tests.infra import Infra
from tests.integration.helpers import group_members, own_group, served, wait_for

TOKEN = "test-admin-token"


def mql(i: int) -> StageChanged:
    return factories.mql(f"lead{i}@company{i}.example")


@asynccontextmanager
async def router_app(
    infra: Infra, database_url: str, config: Path
) -> AsyncIterator[httpx.AsyncClient]:
    await asyncio.to_thread(upgrade, "router", database_url, orm.SCHEMA)
    group = await own_group(infra.bootstrap)
    settings = RouterSettings(
        database_url=database_url,
        kafka_bootstrap_servers=infra.bootstrap,
        consumer_group=group,
        relay_poll_interval_s=0.1,
        config_path=config,
        config_reload_interval_s=0.2,
        admin_token=TOKEN,
        webhook_schedule_s="0.1,0.1",
    )
    async with served(create_app(settings), TOKEN) as client:
        assert await wait_for(lambda: group_members(infra.bootstrap, settings.consumer_group)) == 1
        yield client
