"""Run a coroutine from a synchronous caller (CLI, Streamlit, the eval runner) and relay its events.

Everything async runs on one long-lived event loop per process: the async HTTP clients that
langchain-openai caches per endpoint are bound to the loop they first ran on, so a fresh
`asyncio.run` per call (or a loop per caller) breaks them with "Event loop is closed".
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

E = TypeVar("E")
R = TypeVar("R")

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def background_loop() -> asyncio.AbstractEventLoop:
    """The process-wide event loop (started on first use, in a daemon thread)."""
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="triptych-loop", daemon=True).start()
        return _loop


def run_relaying(
    start: Callable[[Callable[[E], None]], Coroutine[Any, Any, R]],
    on_event: Callable[[E], None] | None = None,
    *,
    poll_s: float = 0.02,
) -> R:
    """Run `start(report)` on the background loop and return its result.

    Every event the coroutine passes to `report` reaches `on_event` in the caller's thread, in order,
    before this returns. If the caller is interrupted (Ctrl-C, or `on_event` raises), the coroutine
    is cancelled and the exception propagates.
    """
    events: queue.SimpleQueue[E] = queue.SimpleQueue()
    future = asyncio.run_coroutine_threadsafe(start(events.put), background_loop())
    try:
        while True:
            finished = future.done()  # checked first: once done, every event is already queued
            try:
                event = events.get(timeout=0 if finished else poll_s)
            except queue.Empty:
                if finished:
                    return future.result()
                continue
            if on_event is not None:
                on_event(event)
    except BaseException:
        future.cancel()
        raise
