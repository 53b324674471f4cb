"""``python -m bench.cluster``: ``bench.e2e`` as production runs, on a three-node Kafka
cluster (replication 3, two in sync) with two instances of every service and the load spread
over both intakes (``make run BROKERS=3 REPLICAS=2``); in the report beside ``bench.e2e``'s one
broker. Its options are ``bench.e2e``'s; the scale runs are left out."""

from __future__ import annotations

import sys

from bench.e2e.__main__ import main

if __name__ == "__main__":
    sys.argv[1:1] = ["--brokers", "3", "--replicas", "2", "--scale", ""]
    raise SystemExit(main())
