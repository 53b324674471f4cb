"""Where the active scoring model comes from: a YAML file, reloaded when it changes.

Each version is registered in ``scoring.models`` with its checksum and source (see
``leadrelay_shared.configfile``), so every score's ``model_version`` can be traced to the exact
rules that made it.
"""

from __future__ import annotations

from pathlib import Path

from leadrelay_shared.configfile import WatchedFile

from ..config import ScoringModel, default_text, parse
from . import orm


class ModelStore(WatchedFile[ScoringModel]):
    def __init__(self, path: Path | None) -> None:
        super().__init__(path, parse, what="scoring_model", table=orm.models, default=default_text)
