"""One first-come, first-served queue for the embedded models, shared by everything in the process.

The local llama.cpp servers share the machine's cores and each decodes one request at a time, so
every generation on them (every browser session's comparison, every eval question) waits its turn
here rather than in a queue of its own: two queues would let two requests reach a server at once,
and the second would wait inside the server, invisible, or (with interrupted requests on) cut the
first one short.

The queue works across event loops and threads (tests and callers may run their own loops). A
waiter that is cancelled (a rerun, a closed tab, a new question) leaves the queue at once; a slot
handed to a waiter that was cancelled in the same instant is passed on, never lost.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from types import TracebackType


class ModelQueue:
    """At most `slots` holders at once; the others wait in arrival order. Use `async with queue:`."""

    def __init__(self, slots: int = 1) -> None:
        if slots < 1:
            raise ValueError("a model queue needs at least one slot (TRIPTYCH_LOCAL_CONCURRENCY >= 1)")
        self.slots = slots
        self._held = 0
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()
        self._lock = threading.Lock()

    def locked(self) -> bool:
        """Whether a new arrival would have to wait."""
        with self._lock:
            return self._held >= self.slots or bool(self._waiters)

    @property
    def waiting(self) -> int:
        """How many are waiting for a slot."""
        with self._lock:
            return len(self._waiters)

    @property
    def held(self) -> int:
        """How many slots are taken."""
        with self._lock:
            return self._held

    async def acquire(self) -> None:
        """Wait for a slot (first come, first served)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._held < self.slots and not self._waiters:
                self._held += 1
                return
            waiter = (loop, loop.create_future())
            self._waiters.append(waiter)
        try:
            await waiter[1]
        except asyncio.CancelledError:
            with self._lock:
                try:
                    self._waiters.remove(waiter)
                    handed_over = False
                except ValueError:  # release() had already handed this waiter the slot
                    handed_over = True
            if handed_over:
                self.release()
            raise

    def release(self) -> None:
        """Give the slot to the next waiter, or free it."""
        with self._lock:
            while self._waiters:
                loop, future = self._waiters.popleft()
                try:
                    loop.call_soon_threadsafe(_grant, future)
                except RuntimeError:  # the waiter's loop is closed: it will never take the slot
                    continue
                return  # the slot passes straight to the waiter: `_held` is unchanged
            self._held -= 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _grant(future: asyncio.Future[None]) -> None:
    if not future.done():  # a cancelled waiter passes the slot on itself (see `acquire`)
        future.set_result(None)
