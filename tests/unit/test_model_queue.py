"""The local models' queue: one per process, first come first served, across threads and event loops."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from triptych.llm.queue import ModelQueue


def test_holders_wait_in_arrival_order() -> None:
    queue = ModelQueue(1)
    order: list[int] = []

    async def user(i: int) -> None:
        async with queue:
            order.append(i)
            await asyncio.sleep(0.01)

    async def main() -> None:
        tasks = []
        for i in range(5):
            tasks.append(asyncio.create_task(user(i)))
            await asyncio.sleep(0)  # arrive one after another
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert order == [0, 1, 2, 3, 4]
    assert queue.held == 0 and queue.waiting == 0


def test_two_threads_with_their_own_event_loops_never_hold_it_at_once() -> None:
    """Two browser sessions (or an eval and a session) each run their own loop: they still take turns."""
    queue = ModelQueue(1)
    inside = 0
    most_inside = 0
    lock = threading.Lock()

    async def generate() -> None:
        nonlocal inside, most_inside
        async with queue:
            with lock:
                inside += 1
                most_inside = max(most_inside, inside)
            await asyncio.sleep(0.02)
            with lock:
                inside -= 1

    async def session() -> None:
        for _ in range(5):
            await generate()

    threads = [threading.Thread(target=asyncio.run, args=(session(),)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert most_inside == 1
    assert queue.held == 0 and queue.waiting == 0


def test_a_cancelled_waiter_leaves_the_queue_and_the_next_one_gets_the_slot() -> None:
    queue = ModelQueue(1)

    async def main() -> list[str]:
        got: list[str] = []
        await queue.acquire()  # someone is generating
        abandoned = asyncio.create_task(queue.acquire())
        await asyncio.sleep(0.01)

        async def next_question() -> None:
            async with queue:
                got.append("next")

        waiting = asyncio.create_task(next_question())
        await asyncio.sleep(0.01)
        assert queue.waiting == 2
        abandoned.cancel()  # the viewer clicked elsewhere
        await asyncio.sleep(0.01)
        assert queue.waiting == 1
        queue.release()
        await asyncio.wait_for(waiting, 1)
        return got

    assert asyncio.run(main()) == ["next"]
    assert queue.held == 0


def test_a_slot_handed_to_a_waiter_cancelled_in_the_same_instant_is_passed_on() -> None:
    queue = ModelQueue(1)

    async def main() -> bool:
        await queue.acquire()
        first = asyncio.create_task(queue.acquire())
        second = asyncio.create_task(queue.acquire())
        await asyncio.sleep(0.01)
        queue.release()  # the slot is handed to `first`...
        first.cancel()  # ...which is cancelled before it could run
        await asyncio.wait_for(second, 1)  # so it goes to `second`, not lost
        queue.release()
        return first.cancelled()

    assert asyncio.run(main())
    assert queue.held == 0 and queue.waiting == 0


def test_locked_says_whether_a_newcomer_would_wait() -> None:
    queue = ModelQueue(2)

    async def main() -> list[bool]:
        seen = [queue.locked()]
        await queue.acquire()
        seen.append(queue.locked())
        await queue.acquire()
        seen.append(queue.locked())
        queue.release()
        queue.release()
        return seen

    assert asyncio.run(main()) == [False, False, True]


def test_a_queue_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="TRIPTYCH_LOCAL_CONCURRENCY"):
        ModelQueue(0)


def test_waiting_does_not_block_the_event_loop() -> None:
    queue = ModelQueue(1)

    async def main() -> float:
        await queue.acquire()
        waiter = asyncio.create_task(queue.acquire())
        started = time.perf_counter()
        await asyncio.sleep(0.05)  # the loop keeps running other work while `waiter` waits
        slept = time.perf_counter() - started
        waiter.cancel()
        queue.release()
        return slept

    assert asyncio.run(main()) < 0.5
