"""Pure scoring: fit, decaying engagement and the stage machine. No I/O, no clock: ``now`` is
always passed in, so the same profile, event, model and ``now`` always give the same decision.

Promises the tests hold us to:

* fit and engagement scores are never negative, and each engagement rule stays within its cap;
* applying an event twice changes nothing the second time (hits are keyed by event id);
* the scores depend on the set of events and ``now``, not on the order events arrived in;
* every stage change is checked against ``TRANSITIONS`` (which actor may make it) and carries
  reasons; a forbidden change is reported, never applied.
"""

from .decide import apply, due_after, erase, on_engagement, on_feedback, on_time
from .engagement import (
    EngagementLine,
    Hit,
    HitSums,
    RuleSum,
    add_hits,
    covers,
    engagement,
    hit_sums,
)
from .fit import fit, fit_held, fit_matches, grade, grade_at_least
from .profile import Decision, LeadProfile, Part, merge_snapshot
from .stages import ALLOWED, TRANSITIONS, Actor, Transition, TransitionRejected, transition

__all__ = [
    "ALLOWED",
    "TRANSITIONS",
    "Actor",
    "Decision",
    "EngagementLine",
    "Hit",
    "HitSums",
    "LeadProfile",
    "Part",
    "RuleSum",
    "Transition",
    "TransitionRejected",
    "add_hits",
    "apply",
    "covers",
    "due_after",
    "engagement",
    "erase",
    "fit",
    "fit_held",
    "fit_matches",
    "grade",
    "grade_at_least",
    "hit_sums",
    "merge_snapshot",
    "on_engagement",
    "on_feedback",
    "on_time",
    "transition",
]
