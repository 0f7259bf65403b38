"""Preflight: the go / no-go check before a stream. `runner` gathers, `checks` judges."""

from agent.preflight.runner import DEFAULT_DURATION_S, run_preflight

__all__ = ["DEFAULT_DURATION_S", "run_preflight"]
