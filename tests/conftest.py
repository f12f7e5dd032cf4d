"""Suite-wide settings: deterministic property tests, bounded in time."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# derandomize: the same examples every run, so CI is deterministic (the standards ask for seeded tests).
settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci")
