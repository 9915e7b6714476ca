"""The run history for asyncio: every :class:`HistoryStore` call, run in one dedicated worker thread.

The event loop never waits on the disk. :class:`AsyncHistory` has no logic of its own: each of
its methods is made from the store's method of the same name by :func:`_offload`, so it has the
same parameters, returns the same value (awaited) and runs in the same single thread, in the
order the calls were made.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, Final, ParamSpec, Self, TypeVar

from runmonitor.storage.history.records import HistoryError
from runmonitor.storage.history.store import MAX_RAW_BYTES, HistoryStore

P = ParamSpec("P")
T = TypeVar("T")


def _close_opened_store(future: Future[HistoryStore]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


def _offload(
    method: Callable[Concatenate[HistoryStore, P], T],
) -> Callable[Concatenate[AsyncHistory, P], Coroutine[Any, Any, T]]:
    """``HistoryStore.<name>`` as an ``async`` method of :class:`AsyncHistory` that runs it in the
    history thread, exactly as :meth:`AsyncHistory.call` would.

    The method is looked up on the store by name at each call, as a bound method would be, so a
    store whose class was patched (a test's spy) is used as it is.
    """
    name = method.__name__

    @functools.wraps(method)
    async def offloaded(self: AsyncHistory, /, *args: P.args, **kwargs: P.kwargs) -> T:
        bound: Callable[P, T] = getattr(self._store, name)
        return await self._submit(functools.partial(bound, *args, **kwargs))

    offloaded.__qualname__ = f"AsyncHistory.{name}"
    return offloaded


class AsyncHistory:
    """:class:`HistoryStore` for asyncio: every call runs in one dedicated worker thread.

    A cancelled await does not undo a call already handed to the worker; it still completes.
    """

    THREAD_NAME_PREFIX: Final = "runmonitor-history"

    def __init__(self, store: HistoryStore, executor: ThreadPoolExecutor) -> None:
        """Use :meth:`open`; this takes a store opened in ``executor``'s thread."""
        self._store = store
        self._executor = executor
        self._closed = False

    @classmethod
    async def open(cls, path: Path, *, max_raw_bytes: int = MAX_RAW_BYTES) -> AsyncHistory:
        """Open (create, migrate) the history in a new worker thread, off the event loop."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=cls.THREAD_NAME_PREFIX)
        future = executor.submit(HistoryStore, path, max_raw_bytes=max_raw_bytes)
        try:
            store = await asyncio.wrap_future(future)
        except BaseException:
            # Also when cancelled while the worker was opening: close what it opens.
            future.add_done_callback(_close_opened_store)
            executor.shutdown(wait=False)
            raise
        return cls(store, executor)

    async def close(self) -> None:
        """Close the store in the worker thread, then stop the thread. Closing twice is fine."""
        if self._closed:
            return
        try:
            await self.call(self._store.close)
        finally:
            self._closed = True
            self._executor.shutdown(wait=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def path(self) -> Path:
        return self._store.path

    @property
    def schema_version(self) -> int:
        return self._store.schema_version

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` in the history thread and return its result."""
        return await self._submit(functools.partial(fn, *args, **kwargs))

    def _submit(self, job: Callable[[], T]) -> asyncio.Future[T]:
        """Hand ``job`` to the history thread (after every call handed over before it)."""
        if self._closed:
            raise HistoryError("The run history is closed.")
        return asyncio.get_running_loop().run_in_executor(self._executor, job)

    # -- runs --------------------------------------------------------------------------------
    upsert_run = _offload(HistoryStore.upsert_run)
    upsert_runs = _offload(HistoryStore.upsert_runs)
    record_check = _offload(HistoryStore.record_check)
    record_quiet_checks = _offload(HistoryStore.record_quiet_checks)
    record_failure = _offload(HistoryStore.record_failure)
    record_event = _offload(HistoryStore.record_event)
    close_run = _offload(HistoryStore.close_run)
    reopen_run = _offload(HistoryStore.reopen_run)
    get_run = _offload(HistoryStore.get_run)
    find_run = _offload(HistoryStore.find_run)
    runs_with_run_id = _offload(HistoryStore.runs_with_run_id)
    open_runs = _offload(HistoryStore.open_runs)
    query_runs = _offload(HistoryStore.query_runs)
    timeline = _offload(HistoryStore.timeline)
    duration_stats = _offload(HistoryStore.duration_stats)

    # -- intents -----------------------------------------------------------------------------
    add_intent = _offload(HistoryStore.add_intent)
    set_intent_state = _offload(HistoryStore.set_intent_state)
    get_intent = _offload(HistoryStore.get_intent)
    intent_count = _offload(HistoryStore.intent_count)
    open_intents = _offload(HistoryStore.open_intents)
    mark_pending_unconfirmed = _offload(HistoryStore.mark_pending_unconfirmed)

    # -- watches -----------------------------------------------------------------------------
    add_watch = _offload(HistoryStore.add_watch)
    remove_watch = _offload(HistoryStore.remove_watch)
    watches = _offload(HistoryStore.watches)
    update_watch = _offload(HistoryStore.update_watch)

    # -- housekeeping ------------------------------------------------------------------------
    apply_retention = _offload(HistoryStore.apply_retention)
    stats = _offload(HistoryStore.stats)
