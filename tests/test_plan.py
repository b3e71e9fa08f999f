"""The plan's pool runs what was queued in priority order, whatever order it was queued in, so
a request budget is spent on what matters most first."""

from __future__ import annotations

import threading

from conformance.plan import _PriorityPool


def test_the_lowest_priority_runs_first_then_the_first_queued():
    ran: list[str] = []
    gate = threading.Event()
    pool = _PriorityPool(1)
    try:
        blocker = pool.submit((0,), gate.wait)  # holds the one worker while the rest is queued
        futures = [pool.submit(priority, lambda name=name: ran.append(name))
                   for priority, name in [((3, 0), "property"), ((2, 1), "second case"), ((1, 0), "requirement"),
                                          ((2, 0), "first case"), ((2, 1), "second case, queued later")]]
        gate.set()
        for future in [blocker, *futures]:
            future.result(timeout=10)
    finally:
        pool.shutdown()
    assert ran == ["requirement", "first case", "second case", "second case, queued later", "property"]


def test_shutdown_cancels_what_has_not_started():
    gate = threading.Event()
    pool = _PriorityPool(1)
    blocker = pool.submit((0,), gate.wait)
    queued = pool.submit((1,), lambda: "never")
    threading.Timer(0.2, gate.set).start()
    pool.shutdown()
    assert blocker.done() and queued.cancelled()
