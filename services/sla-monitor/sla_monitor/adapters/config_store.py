"""Where the active SLA policies come from: a YAML file, reloaded when it changes, each
version registered in ``sla.policies`` (see ``leadrelay_shared.configfile``)."""

from __future__ import annotations

from pathlib import Path

from leadrelay_shared.configfile import WatchedFile
from leadrelay_shared.destinations import Destinations

from ..config import SlaConfig, check_destinations, parse
from . import orm


class PolicyStore(WatchedFile[SlaConfig]):
    def __init__(self, path: Path, destinations: Destinations) -> None:
        super().__init__(
            path,
            lambda text, source: check_destinations(parse(text, source), destinations, source),
            table=orm.policies,
            what="sla_policies",
        )
