"""The one timing helper: warm-up, repeats, synchronisation, minimum, interleaving."""

from __future__ import annotations

from esrgan_lab.timing import fastest, fastest_interleaved, time_runs


def test_time_runs_warms_up_and_synchronises() -> None:
    calls: list[str] = []
    times = time_runs(lambda: calls.append("fn"), 3, 2, lambda: calls.append("sync"))
    assert len(times) == 3 and (times >= 0).all()
    assert calls == ["fn", "fn"] + ["sync", "fn", "sync"] * 3


def test_fastest_is_the_minimum_and_interleaving_calls_round_by_round() -> None:
    assert fastest(lambda: None, 3) >= 0
    order: list[str] = []
    times = fastest_interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, 2)
    assert set(times) == {"a", "b"} and order == ["a", "b", "a", "b"]
