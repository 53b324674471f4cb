"""The process-level tuning every service applies once started."""

from __future__ import annotations

import gc
import weakref

from leadrelay_shared.runtime import YOUNG_GC_THRESHOLD, settle_heap


def test_settle_heap_freezes_what_lives_and_thaws_it_again_on_the_next_settle() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the cyclic collector can free it

    settle_heap()
    assert gc.get_freeze_count() > 0 and gc.get_threshold()[0] == YOUNG_GC_THRESHOLD
    node = Node()
    alive = weakref.ref(node)
    settle_heap()
    # frozen: still tracked, but in no generation the collector walks
    assert gc.is_tracked(node) and not any(o is node for o in gc.get_objects())
    del node
    settle_heap()  # thawed, collected, frozen again: the cycle is gone
    assert alive() is None
