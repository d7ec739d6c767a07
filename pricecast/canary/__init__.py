"""Canary delivery: analysis of canary vs stable in Prometheus, and Helm values for each step.

- :mod:`pricecast.canary.analysis`: the pure, Flagger-like decision (promote/rollback/inconclusive).
- :mod:`pricecast.canary.prometheus`: the HTTP adapter that feeds it numbers.
- :mod:`pricecast.canary.release`: values overlays for ``canary start|promote|rollback``.
- :mod:`pricecast.canary.report`: what the CLI prints.
"""

from pricecast.canary.analysis import EXIT_CODES, Analysis, Check, Policy, TrackStats, Verdict

__all__ = ["EXIT_CODES", "Analysis", "Check", "Policy", "TrackStats", "Verdict"]
