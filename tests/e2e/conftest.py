from collections.abc import Iterator

import pytest

from devstack.ports import free_port
from devstack.receiver import Receiver
from tests.e2e.stack import CRM_SECRET, OPS_SECRET


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """The sales system (``crm``) and the ops channel (``ops``) of a module's stack."""
    r = Receiver(secrets={"crm": CRM_SECRET, "ops": OPS_SECRET}, port=free_port())
    r.start()
    yield r
    r.stop()
