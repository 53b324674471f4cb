"""Schema-driven fuzzing of intake's OpenAPI document with schemathesis: valid and invalid
bodies, headers and paths for every operation. The promise checked: never a 5xx (503 aside,
which means Kafka did not acknowledge and never happens with the recording publisher here), and
every refusal is a 4xx RFC 9457 problem document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings

from intake.auth import Scope
from intake.bootstrap import create_app
from intake.settings import IntakeSettings
from tests.unit.intake.fakes import FakePublisher, StaticKeys

KEYS = StaticKeys()
KEY = KEYS.add(*Scope)
APP = create_app(IntakeSettings(rate_limit="1000000/second", batch_max_items=50), keys=KEYS)
APP.state.publisher = FakePublisher()


@asynccontextmanager
async def _no_lifespan(_: Any) -> AsyncIterator[None]:
    yield  # no Kafka: the recording publisher above stands in for it


APP.router.lifespan_context = _no_lifespan
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).include(path_regex="^/v1/")


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_every_refusal_is_a_problem_document(
    case: schemathesis.Case[Any],
) -> None:
    response = case.call(headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert response.headers["content-type"][0].startswith("application/problem+json"), (
            response.text[:300]
        )
        body = response.json()
        assert body["status"] == response.status_code and body["detail"]
