"""The fuzzing suite: property tests over every parser of outside input.

In CI each runs a bounded number of examples (the "ci" profile). A longer run, for a developer
or a nightly job:

    PBXGATE_FUZZ=long .venv/bin/pytest tests/fuzz -p no:randomly

(``long``: 20,000 examples each; ``PBXGATE_FUZZ_EXAMPLES=N`` sets any number.) A finding
becomes a regression test next to the parser's own tests; Hypothesis also keeps failing
examples in ``.hypothesis/`` and replays them first.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_EXAMPLES = {"ci": 150, "long": 20_000}
_profile = os.environ.get("PBXGATE_FUZZ", "ci")
_count = int(os.environ.get("PBXGATE_FUZZ_EXAMPLES", _EXAMPLES.get(_profile, 150)))

settings.register_profile(
    "pbxgate-fuzz",
    max_examples=_count,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FUZZ = settings.get_profile("pbxgate-fuzz")
