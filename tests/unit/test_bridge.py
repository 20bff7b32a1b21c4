"""The sync-to-async bridge: events reach the caller's thread in order, results and errors come back."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from triptych.bridge import background_loop, run_relaying


async def _count(report: Callable[[int], None], n: int) -> str:
    for i in range(n):
        report(i)
        await asyncio.sleep(0)
    return "finished"


def test_every_event_reaches_the_caller_thread_in_order_before_the_result() -> None:
    seen: list[tuple[int, str]] = []
    result = run_relaying(
        lambda report: _count(report, 50), lambda e: seen.append((e, threading.current_thread().name))
    )
    assert result == "finished"
    assert [e for e, _ in seen] == list(range(50))
    assert {name for _, name in seen} == {threading.current_thread().name}


def test_events_reported_just_before_the_end_are_not_lost() -> None:
    async def burst(report: Callable[[int], None]) -> None:
        for i in range(1000):
            report(i)  # no await: the coroutine finishes right after queueing them

    seen: list[int] = []
    run_relaying(burst, seen.append, poll_s=0.001)
    assert seen == list(range(1000))


def test_the_coroutine_error_propagates() -> None:
    async def fail(report: Callable[[int], None]) -> None:
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        run_relaying(fail)


def test_a_failing_event_handler_cancels_the_coroutine() -> None:
    cancelled = threading.Event()

    async def forever(report: Callable[[int], None]) -> None:
        try:
            while True:
                report(1)
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def stop(_event: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_relaying(forever, stop)
    assert cancelled.wait(2)


def test_one_loop_serves_every_call() -> None:
    async def which_loop(report: Callable[[int], None]) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    assert run_relaying(which_loop) is run_relaying(which_loop) is background_loop()
