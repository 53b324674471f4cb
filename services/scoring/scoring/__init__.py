"""scoring: lead profiles, fit and engagement scores, and the demand-waterfall stage machine.

``scoring.domain`` is compiled by ``make native`` (mypyc); the build is used only while it
matches the sources (``leadrelay_shared.native``)."""

from leadrelay_shared.native import use_native

NATIVE = use_native(__path__, __name__)
