"""A held figure (agent/net/steady.py): made only when readings agree, moved only by a settled change."""

from __future__ import annotations

from agent.net.steady import HeldFigure, agreed


def test_readings_that_do_not_agree_make_no_figure() -> None:
    assert agreed([1.15e6, 1.12e6, 1.18e6, 1.46e6]) == 1.15e6  # the burst is left out
    assert agreed([0.37e6, 1.15e6, 0.72e6, 1.46e6]) is None  # all over the place: not known yet
    assert agreed([]) is None


def test_a_held_figure_moves_only_after_a_settled_change() -> None:
    figure = HeldFigure(change_ratio=0.2, settle_s=3.0)
    assert figure.offer(0.0, None) is False and figure.value is None
    assert figure.offer(0.0, 1.15e6) and figure.value == 1.15e6
    assert not figure.offer(1.0, 1.3e6)  # within 20 %: the same link
    assert not figure.offer(2.0, 1.5e6) and not figure.offer(4.0, 1.5e6)  # up, not yet for 3 s
    assert not figure.offer(4.5, 0.6e6)  # then down: the clock starts again
    assert not figure.offer(5.0, None) and not figure.offer(7.0, 0.6e6)
    assert figure.offer(7.5, 0.6e6) and figure.value == 0.6e6
    figure.clear()
    assert figure.value is None
