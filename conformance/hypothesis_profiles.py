"""Hypothesis settings for checks that talk HTTP to a target.

Three profiles: ``quick``, ``ci`` (the default: derandomized, a fixed number of examples)
and ``thorough`` (ten times ci's examples). Every run has a seed, recorded in results.json:
``--seed`` when given, 0 under ``ci``, otherwise one drawn for the run. The same seed sends
the same requests, which is why the example database is off: replaying failures saved by an
earlier run would change the sequence.
"""

from __future__ import annotations

import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.configuration import set_hypothesis_home_dir

from conformance.config import Settings

# Examples per property. The default (ci) sends few: the parametrized checks probe the chosen
# points of the request space, and more examples caught no more faults; thorough spends more.
CI_EXAMPLES = 15
QUICK_EXAMPLES = 5
THOROUGH_EXAMPLES = 1000
CI_SEED = 0
EXAMPLES_PER_WALK = 20  # the stateful walk runs once per twenty examples of the property (at least once)
WALK_STEPS = 10

_COMMON: dict[str, Any] = {
    "deadline": None,  # a network round trip is not the code under test
    "database": None,
    "print_blob": False,
    "report_multiple_bugs": False,
    # The explain phase would send more requests after shrinking, for a note we do not show.
    "phases": (Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
    "suppress_health_check": (HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large),
    "stateful_step_count": WALK_STEPS,
}
PROFILES: dict[str, dict[str, Any]] = {
    "quick": {"max_examples": QUICK_EXAMPLES},
    "ci": {"max_examples": CI_EXAMPLES, "derandomize": True},
    "thorough": {"max_examples": THOROUGH_EXAMPLES},
}

def register() -> None:
    """Register the three profiles with Hypothesis (idempotent)."""
    for name, values in PROFILES.items():
        settings.register_profile(name, **_COMMON, **values)


@dataclass(frozen=True)
class HypothesisRun:
    """The Hypothesis side of one run: profile, effective seed and examples per property."""

    profile: str
    seed: int
    examples: int

    def settings(self) -> hypothesis.settings:
        """Settings for a property: the profile with this run's example count."""
        return settings(settings.get_profile(self.profile), max_examples=self.examples)

    def walk_settings(self) -> hypothesis.settings:
        """Settings for the stateful walk: one walk per ``EXAMPLES_PER_WALK`` examples."""
        return settings(self.settings(), max_examples=max(1, self.examples // EXAMPLES_PER_WALK))

    def describe(self) -> dict[str, Any]:
        """What results.json records under ``hypothesis``."""
        return {"profile": self.profile, "seed": self.seed, "examples": self.examples}


def hypothesis_home() -> Path:
    """A stable per-user cache folder for Hypothesis' files (its unicode tables take 1.5-2 CPU
    seconds to build, so they must outlive one report folder); a temporary one when the user's
    cache cannot be written."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "conformance" / "hypothesis"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        if os.access(cache, os.W_OK):
            return cache
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / f"conformance-hypothesis-{os.getuid() if hasattr(os, 'getuid') else 0}"


def configure(run_settings: Settings) -> HypothesisRun:
    """Register and load the profile, keep Hypothesis' files in the user's cache, fix the seed."""
    register()
    settings.load_profile(run_settings.hypothesis_profile)
    set_hypothesis_home_dir(hypothesis_home())
    seed = run_settings.seed
    if seed is None:
        seed = CI_SEED if run_settings.hypothesis_profile == "ci" else random.SystemRandom().randrange(2**32)
    examples = run_settings.examples or PROFILES[run_settings.hypothesis_profile]["max_examples"]
    return HypothesisRun(run_settings.hypothesis_profile, seed, examples)


register()
