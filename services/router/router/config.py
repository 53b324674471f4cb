"""The routing configuration: teams, reps and webhook subscriptions, from YAML, validated."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from leadrelay_shared.contracts import Stage
from leadrelay_shared.delivery import Endpoint

from .errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RepConfig(_Strict):
    id: str = Field(min_length=1)
    name: str
    email: str | None = None
    active: bool = True


class TeamConfig(_Strict):
    id: str = Field(min_length=1)
    name: str
    stages: tuple[Stage, ...] = (Stage.MQL,)
    strategy: Literal["round_robin"] = "round_robin"
    reps: tuple[RepConfig, ...] = Field(min_length=1)


class WebhookConfig(_Strict):
    id: str
    url: str
    secret: str = Field(pattern=r"^whsec_[A-Za-z0-9+/=]+$")
    events: tuple[str, ...] = ("lead.assigned",)


class RoutingConfig(_Strict):
    version: str
    teams: tuple[TeamConfig, ...] = Field(min_length=1)
    webhooks: tuple[WebhookConfig, ...] = ()

    @model_validator(mode="after")
    def _unique_ids(self) -> "RoutingConfig":
        for kind, ids in (("teams", [t.id for t in self.teams]),
                          ("webhooks", [w.id for w in self.webhooks])):
            dupes = {i for i in ids if ids.count(i) > 1}
            if dupes:
                raise ValueError(f"{kind}: duplicate id(s) {sorted(dupes)}")
        return self

    def team_for(self, stage: Stage) -> TeamConfig | None:
        return next((t for t in self.teams if stage in t.stages), None)

    def endpoints(self) -> dict[str, Endpoint]:
        return {w.id: Endpoint(id=w.id, url=w.url, secret=w.secret,
                               event_types=frozenset(w.events)) for w in self.webhooks}


def load(path: Path) -> RoutingConfig:
    text = path.read_text()
    try:
        raw = yaml.safe_load(text)
        config = RoutingConfig.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{path}: {where}: {err['msg']}") from exc
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return config.model_copy(update={"version": f"{config.version}+{digest}"})
