"""Creates: the intent is stored before the request is sent once; a full quota queues it.

A create whose answer was lost is "unconfirmed" (never sent again blindly): it can be looked
up on the service and adopted, or discarded. A create refused for a full quota is queued and
sent again when the quota frees, also after a restart (unless it had secret inputs).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

from runmonitor.domain.errors import NotFound, QuotaReached, RateLimited, ServiceError
from runmonitor.domain.events import EventKind
from runmonitor.domain.models import Capability, RunSnapshot
from runmonitor.domain.redact import MASK, redact_json
from runmonitor.engine.core import AnyService, HostState, QueuedCreate
from runmonitor.engine.events import QueuedForQuota
from runmonitor.engine.polling import Polling
from runmonitor.services.base import CreateRequest
from runmonitor.storage.history import IntentRecord, IntentState, RunRecord

log = logging.getLogger(__name__)


class Creates(Polling):
    """Creating runs, the quota queue, and creates whose outcome is unknown."""

    async def create_run(self, profile_id: str, request: CreateRequest) -> RunRecord:
        """Create a run: the intent is stored first, the request is sent once, the run followed.

        Raises the service's error; a full quota raises :class:`QueuedForQuota` when
        ``queue_on_quota`` is set, and the create is then sent again when the quota frees.
        """
        client = self._client(profile_id)
        request = client.prepare_request(request)
        intent = await self.history.add_intent(
            client.key,
            profile_id,
            request.target(),
            stored_request(request),
            client.client_run_id(request),
        )
        return await self._send_create(client, profile_id, intent, request)

    async def _send_create(
        self, client: AnyService, profile_id: str, intent: IntentRecord, request: CreateRequest
    ) -> RunRecord:
        try:
            snapshot = await client.create_run(request)
        except RateLimited as exc:
            # A refusal before processing: nothing was created, so sending it later is safe.
            if isinstance(exc, QuotaReached) and self.queue_on_quota:
                raise await self._queue_intent(intent, request, exc) from exc
            await self.history.set_intent_state(intent.id, IntentState.FAILED, error=str(exc))
            self._emit_create_problem(EventKind.CREATE_FAILED, intent, exc)
            raise
        except ServiceError as exc:
            if exc.may_have_reached_service:
                updated = await self.history.set_intent_state(
                    intent.id, IntentState.UNCONFIRMED, error=str(exc)
                )
                self._emit_create_problem(EventKind.CREATE_UNCONFIRMED, updated, exc)
            else:
                updated = await self.history.set_intent_state(intent.id, IntentState.FAILED, error=str(exc))
                self._emit_create_problem(EventKind.CREATE_FAILED, updated, exc)
            raise
        record, _ = await self.history.upsert_run(
            profile_id, snapshot, origin="created", request=stored_request(request)
        )
        await self.history.set_intent_state(intent.id, IntentState.CONFIRMED, run=record.id)
        self._emit(self._event(EventKind.CREATED, record))
        if not record.closed:
            self._track(record, due=self._next_due(record, self.clock.monotonic()))
            self._kick()
        return record

    async def _queue_intent(
        self, intent: IntentRecord, request: CreateRequest, exc: RateLimited
    ) -> QueuedForQuota:
        previous = self._queued.get(intent.id)
        attempts = (previous.attempts if previous else 0) + 1
        schedule = self.schedule_for(intent.profile_id)
        wait = exc.retry_after if exc.retry_after is not None else schedule.backoff(attempts, 30.0, self.rng)
        updated = await self.history.set_intent_state(intent.id, IntentState.QUEUED, error=str(exc))
        due = self.clock.monotonic() + wait
        self._queued[intent.id] = QueuedCreate(updated, due, attempts, request)
        self._push(due, "intent", intent.id)
        self._kick()
        retry_at = self.clock.now() + timedelta(seconds=wait)
        self._emit_intent(
            EventKind.CREATE_QUEUED,
            updated,
            f"{exc.message}; will try again at {retry_at:%H:%M:%S}",
            error_kind=exc.kind,
        )
        return QueuedForQuota(
            f"{exc.message}. The run is queued and will be created when the quota frees.",
            intent=updated,
            retry_at=retry_at,
            service=exc.service,
            status_code=exc.status_code,
        )

    def _emit_create_problem(self, kind: EventKind, intent: IntentRecord, exc: ServiceError) -> None:
        self._emit_intent(kind, intent, str(exc), error_kind=exc.kind)

    # -- creates whose outcome is unknown ---------------------------------------------------
    async def lookup_intent(self, intent_id: str) -> list[RunSnapshot]:
        """Runs on the service that may be this create: by its client-chosen id where the
        service takes one, else the target's runs created around the intent's time."""
        intent = await self.history.get_intent(intent_id)
        if intent is None:
            raise KeyError(intent_id)
        client = self._client(intent.profile_id)
        if intent.client_run_id:
            ref = client.ref_for_client_id(intent.target, intent.client_run_id)
            try:
                return [await client.get_status(ref)]
            except NotFound:
                return []
        if Capability.LIST_RUNS not in client.capabilities:
            return []
        request = client.request_model.model_validate(intent.request)
        try:
            # Enough of the newest runs to reach back past the intent on a busy pipeline.
            runs = await client.list_runs(client.list_target_for(request), limit=200)
        except NotFound:
            return []
        earliest = intent.created_at - timedelta(minutes=2)
        latest = intent.updated_at + timedelta(minutes=10)
        return [r for r in runs if r.created_at is None or earliest <= r.created_at <= latest]

    async def adopt_intent(self, intent_id: str, snapshot: RunSnapshot) -> RunRecord:
        """The person confirmed that ``snapshot`` is the run this create made: follow it."""
        intent = await self.history.get_intent(intent_id)
        if intent is None:
            raise KeyError(intent_id)
        record, inserted = await self.history.upsert_run(
            intent.profile_id, snapshot, origin="created", request=intent.request
        )
        await self.history.set_intent_state(intent_id, IntentState.CONFIRMED, run=record.id)
        if inserted:
            self._emit(self._event(EventKind.CREATED, record))
        if not record.closed and record.id not in self._runs:
            self._track(record, due=self.clock.monotonic())
            self._kick()
        return record

    async def discard_intent(self, intent_id: str) -> IntentRecord:
        self._queued.pop(intent_id, None)
        return await self.history.set_intent_state(intent_id, IntentState.DISCARDED)

    # -- queued creates ---------------------------------------------------------------------
    async def _retry_intent(self, intent_id: str, host: HostState) -> None:
        queued = self._queued.get(intent_id)
        try:
            if queued is None:
                return
            intent = queued.intent
            client = self._client(intent.profile_id)
            request = queued.request
            if request is None:
                if MASK in json.dumps(intent.request):
                    # Secret inputs are never stored, so this create cannot be rebuilt after a restart.
                    self._queued.pop(intent_id, None)
                    updated = await self.history.set_intent_state(
                        intent_id,
                        IntentState.FAILED,
                        error="Not sent: it had secret inputs, which RunMonitor does not store; "
                        "create the run again",
                    )
                    self._emit_create_problem(
                        EventKind.CREATE_FAILED,
                        updated,
                        ServiceError(updated.error or "", service=intent.service),
                    )
                    return
                request = client.request_model.model_validate(intent.request)
            queued.sending = True
            try:
                await self._send_create(client, intent.profile_id, intent, request)
            except QueuedForQuota:
                return  # queued again with a new due time
            except ServiceError:
                self._queued.pop(intent_id, None)  # recorded as failed/unconfirmed and announced
                return
            self._queued.pop(intent_id, None)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sending queued create %s failed unexpectedly", intent_id)
            self._queued.pop(intent_id, None)
        finally:
            current = self._queued.get(intent_id)
            if current is not None:
                current.sending = False
            self._finished(host)


def stored_request(request: CreateRequest) -> dict[str, Any]:
    """The create request as history keeps it (for re-run and look-up): secret-named
    values, such as a pipeline input called "password", are masked."""
    data = redact_json(request.model_dump(mode="json"))
    return data if isinstance(data, dict) else {}
