"""The compiled scoring decision (``make native``) decides exactly as its source does, is in use
when ``make test`` runs, and is set aside as soon as it no longer matches the source."""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

import scoring
from leadrelay_shared import native
from leadrelay_shared.contracts import EngagementRecorded, Event, FeedbackReceived, LeadSnapshot
from scoring import domain
from scoring.model import ScoringModel, default_model
from tests.factories import T0, form


def source_domain() -> ModuleType:
    """``scoring/domain.py`` imported from its source, whatever ``scoring.domain`` is."""
    path = Path(scoring.__file__).parent / "domain.py"  # __init__ is never compiled
    spec = importlib.util.spec_from_file_location("scoring._domain_source", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def replay(mod: Any, model: ScoringModel, seed: int) -> list[Any]:
    """Seeded leads through ``mod.apply``: late and out-of-order events, feedback, forms; every
    decision as plain data (its scores, lines with their sentences, transitions, refusals)."""
    rnd = random.Random(seed)
    out: list[Any] = []
    kinds = ["page_view", "email_click", "content_download", "webinar_attended",
             "demo_requested", "form"]
    for n in range(40):
        p, lead_id = None, form(f"n{n}@northwind.example").lead_id
        for _ in range(rnd.randrange(1, 30)):
            at = T0 + timedelta(hours=rnd.randrange(0, 24 * 120))
            now = T0 + timedelta(hours=rnd.randrange(0, 24 * 130))
            kind = rnd.choice(kinds)
            event_id = uuid.UUID(int=rnd.getrandbits(128))
            event: Event
            if rnd.random() < 0.12:
                event = FeedbackReceived(
                    lead_id=lead_id, occurred_at=at, received_at=at, event_id=event_id,
                    feedback=rnd.choice(["accepted", "rejected", "converted", "won", "lost"]),
                    reason_code=rnd.choice([None, "not_a_fit", "bad_timing"]))
            elif kind == "form":
                event = form(f"n{n}@northwind.example", at=at, event_id=event_id,
                             title=rnd.choice(["VP Sales", "Engineer", None]))
            else:
                event = EngagementRecorded(
                    lead_id=lead_id, occurred_at=at, received_at=at, event_id=event_id,
                    engagement_type=kind,
                    url=f"https://northwind.example/{rnd.choice(['pricing', 'blog', 'demo'])}")
            d = mod.apply(p, event, model, now)
            out.append((
                None if d.profile is None else (d.profile.fit_score, d.profile.fit_grade,
                                                d.profile.engagement_score, d.profile.stage,
                                                d.profile.hits, d.profile.cycle),
                [(x.rule_id, x.points, x.hits, x.value, x.cap, x.message, x.event_id)
                 for x in d.engagement_parts],
                [(x.rule_id, x.points, x.message, x.event_id) for x in d.fit_parts],
                [(t.from_stage, t.to_stage, t.actor, t.reasons) for t in d.transitions],
                d.refused, d.ignored, d.score_changed))
            p = d.profile or p
    return out


def test_the_compiled_decision_is_the_sources_decision() -> None:
    source = source_domain()
    assert not native.is_compiled(source)
    for model, seed in ((default_model(), 1), (default_model(), 2)):
        assert replay(domain, model, seed) == replay(source, model, seed)


def test_the_module_in_use_is_the_build_exactly_when_it_is_current() -> None:
    """``make test`` requires the build (``LEADRELAY_NATIVE_REQUIRED=1``); anywhere, a current
    build is the module in use and no other build ever is."""
    assert scoring.NATIVE == native.is_compiled(domain)
    if os.environ.get("LEADRELAY_NATIVE_REQUIRED") == "1":
        assert scoring.NATIVE, "scoring.domain is not the mypyc build: run `make native`"


def test_a_build_is_used_only_while_it_matches_its_sources(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    monkeypatch.delenv("LEADRELAY_NATIVE", raising=False)
    root = tmp_path / "repo"
    for source in native.COMPILED["scoring.domain"]:
        (root / source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(native.ROOT / source, root / source)
    where = tmp_path / "native"
    stamp = native.stamp_path("scoring.domain", where)
    stamp.parent.mkdir(parents=True)
    path: list[str] = ["src"]
    assert not native.use_native(path, "scoring", root=root, where=where)  # no build
    stamp.write_text(native.fingerprint("scoring.domain", root) + "\n")
    assert native.use_native(path, "scoring", root=root, where=where)
    assert path == [str(where / "scoring"), "src"]
    # by default the sources are read where the package was imported from
    here = [str(root / "services/scoring/scoring")]
    assert native.use_native(here, "scoring", where=where) and len(here) == 2
    assert not native.use_native([str(tmp_path)], "scoring", where=where)  # not a checkout
    model_py = root / "services/scoring/scoring/model.py"  # a source it was compiled against
    model_py.write_text(model_py.read_text() + "\n# edited\n")
    path = ["src"]
    assert not native.use_native(path, "scoring", root=root, where=where) and path == ["src"]
    assert not native.use_native(path, "router", root=root, where=where)  # nothing compiled
    stamp.write_text(native.fingerprint("scoring.domain", root) + "\n")
    monkeypatch.setenv("LEADRELAY_NATIVE", "0")  # switched off
    assert not native.use_native(path, "scoring", root=root, where=where)


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
       | st.integers(-10**6, 10**6).map(lambda n: n + 0.5))
def test_round_half_even_is_round(x: float) -> None:
    assert domain.round_half_even(x) == round(x)


@given(st.integers(0, 2**128 - 1))
def test_uuid_text_is_str(n: int) -> None:
    u = uuid.UUID(int=n)
    assert domain.uuid_text(u) == str(u)


SNAPSHOT_VALUES = st.fixed_dictionaries({}, optional={
    "email": st.emails(), "company": st.text(max_size=5), "title": st.none() | st.text(max_size=5),
    "company_size": st.integers(1, 10**5), "is_free_email": st.booleans(),
    "email_domain": st.sampled_from(["acme.io", "gmail.com"])})


@given(SNAPSHOT_VALUES, SNAPSHOT_VALUES)
def test_snapshot_with_is_model_copy(given_values: dict[str, Any], updates: dict[str, Any]
                                     ) -> None:
    """The compiled copy is pydantic's ``model_copy(update=...)``: equal, the same fields set,
    nothing extra or private, still frozen."""
    old = LeadSnapshot(**given_values)
    mine, theirs = domain.snapshot_with(old, updates), old.model_copy(update=updates)
    assert type(mine) is LeadSnapshot and mine == theirs and mine.__dict__ == theirs.__dict__
    assert mine.model_fields_set == theirs.model_fields_set
    assert mine.__pydantic_extra__ is theirs.__pydantic_extra__ is None
    assert mine.__pydantic_private__ is theirs.__pydantic_private__ is None
    assert mine.model_dump() == theirs.model_dump() and old == LeadSnapshot(**given_values)
    with pytest.raises(ValidationError):
        mine.email = "x@y.z"  # type: ignore[misc]
