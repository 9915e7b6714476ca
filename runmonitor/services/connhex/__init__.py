"""Connhex Exporter: asynchronous data exports of an IoT platform.

Create: ``POST /exports`` (``oneTime`` or ``recurring``; a recurring export repeats every
``periodicity``, an ISO 8601 duration) answers 201 with the export. Follow: ``GET
/exports/{id}/status``. List: ``GET /exports``. Delete: ``DELETE /exports/{id}`` (204).
Auth is a bearer token; a gateway in front of the exporter turns it into the caller's
identity, so a 400 "Missing user identity id" means the token did not get through.

What runs here is a *job*: "a job represents the execution of an export", and a
recurring export produces a new job every period and never finishes as a whole. So a
:class:`RunRef` is ``target`` = export id, ``run_id`` = job id (``extra["type"]`` holds the
export type). When no job id is known yet (the export has no job, or its status could
not be read right after creation) ``run_id`` is the export id itself, meaning "the
export's latest job".

Undocumented and therefore read tolerantly: the body of ``GET /exports/{id}/status``
(see :func:`parse_status_body`), the list's pagination, and the real URL prefix under
``apis.<your host>``. A 429 "Maximum number of queued exports reached" is a quota (wait
for queued exports to finish), not a rate limit.

Laid out as: :mod:`.status` (the status table and the tolerant status parser),
:mod:`.request` (the create-request schema) and :mod:`.client` (connection, errors, the
service). The generic duration, e-mail and time-zone checks are in
:mod:`runmonitor.services.validators`.
"""

from runmonitor.services.connhex.client import (
    SERVICE,
    Connhex,
    ConnhexConnection,
    classify_connhex_error,
)
from runmonitor.services.connhex.request import ConnhexExportRequest
from runmonitor.services.connhex.status import SERVICE_KEY, STATUS_MAP, parse_status_body

__all__ = [
    "SERVICE",
    "SERVICE_KEY",
    "STATUS_MAP",
    "Connhex",
    "ConnhexConnection",
    "ConnhexExportRequest",
    "classify_connhex_error",
    "parse_status_body",
]
