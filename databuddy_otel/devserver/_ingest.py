"""The answers of both wire generations to an ingest request (docs/protocol.md):
``POST /track`` with real status codes, legacy ``POST /`` and ``POST /batch`` with
HTTP 200 and ``"status":"error"`` bodies. No sockets here: the handler reads the
body, asks :func:`answer`, and sends what it returns."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from email.message import Message
from http import HTTPStatus
from typing import Any, Union

from databuddy_otel.devserver._body import Body
from databuddy_otel.devserver._limits import MAX_EVENTS_PER_REQUEST
from databuddy_otel.devserver._refusals import refusal
from databuddy_otel.devserver._state import IngestState
from databuddy_otel.devserver._validation import (
    MalformedJSON,
    ValidEvent,
    parse_json,
    validate_legacy_event,
    validate_track,
)

Json = Union[dict[str, Any], list[Any]]
Query = dict[str, list[str]]

#: The ``code`` of /track error bodies; other statuses use their HTTPStatus name.
_CODES = {
    400: "INVALID_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    413: "PAYLOAD_TOO_LARGE",
    429: "RATE_LIMITED",
    500: "INTERNAL_SERVER_ERROR",
}


def track_error(status: int, message: str, **extra: Any) -> dict[str, Any]:
    """The ``/track`` error body: ``{"success":false,"status":"error",...,"code":...}``."""
    code = _CODES.get(status)
    if code is None:
        try:
            code = HTTPStatus(status).name
        except ValueError:
            code = f"HTTP_{status}"
    body = {"success": False, "status": "error", "error": message, "message": message}
    body.update(code=code, **extra)
    return body


def status_message(status: int) -> str:
    """The reason phrase of ``status`` (``HTTP 599`` for unknown codes)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


@dataclass(frozen=True)
class IngestRequest:
    """One ``POST /track``, ``/`` or ``/batch`` as the handler read it."""

    path: str
    query: Query
    headers: Message
    body: Body
    request_id: int
    received_at: int  # server time, milliseconds


@dataclass(frozen=True)
class Reply:
    """What to answer, and what the request did to the store."""

    status: int
    payload: Json
    stored: int = 0
    close: bool = False
    #: Events answered with success (on the legacy path a duplicate is not stored).
    accepted: int = 0
    #: Names of the events stored, in order.
    names: tuple[str, ...] = ()
    #: (index, event) of each event a legacy batch refused inside its 200 answer.
    rejected: tuple[tuple[int, object], ...] = ()


def answer(state: IngestState, request: IngestRequest) -> Reply:
    """Validate ``request``, store what passes, and return the wire generation's answer."""
    if request.path == "/track":
        return _track(state, request)
    return _legacy(state, request)


def _track(state: IngestState, request: IngestRequest) -> Reply:
    body = request.body
    if body.problem == "too_large":
        return Reply(413, track_error(413, "Payload too large"))
    try:
        if body.data is None:
            raise MalformedJSON("the body is not framed correctly")
        parsed = parse_json(body.data)
    except MalformedJSON as exc:
        invalid = track_error(400, "Invalid request body", details=[f"Malformed JSON: {exc}"])
        return Reply(400, invalid)
    query_website_id = first(request.query, "website_id")
    api_key = _api_key(request.headers)
    if api_key is not None:
        if state.api_keys is not None and api_key not in state.api_keys:
            return Reply(403, track_error(403, "API key missing track:events scope"))
    else:
        website_ids = _track_website_ids(parsed, query_website_id)
        if website_ids is None:
            return Reply(401, track_error(401, "API key or website_id required"))
        if state.client_ids is not None and not website_ids <= state.client_ids:
            return Reply(404, track_error(404, "Website not found"))
    events, errors = validate_track(
        parsed, now_ms=request.received_at, default_website_id=query_website_id
    )
    if errors:
        return Reply(400, track_error(400, "Invalid request body", details=errors))
    state.store_events(
        events, protocol="track", request_id=request.request_id, received_at=request.received_at
    )
    success = {"status": "success", "type": "custom_event", "count": len(events)}
    names = tuple(event.name for event in events)
    return Reply(200, success, stored=len(events), accepted=len(events), names=names)


def _legacy(state: IngestState, request: IngestRequest) -> Reply:
    body = request.body
    if body.problem == "too_large":
        return Reply(200, legacy_error("Payload too large"))
    client_id = (
        first(request.query, "client_id") or request.headers.get("databuddy-client-id") or None
    )
    if client_id is None:
        return Reply(200, legacy_error("Missing client ID"))
    if state.client_ids is not None and client_id not in state.client_ids:
        return Reply(200, legacy_error("Invalid or inactive client ID"))
    try:
        if body.data is None:
            raise MalformedJSON("the body is not framed correctly")
        parsed = parse_json(body.data)
    except MalformedJSON:
        return Reply(400, legacy_error("Invalid JSON"))
    if request.path == "/":
        raw_events = [parsed]
    elif not isinstance(parsed, list):
        return Reply(200, legacy_error("Batch endpoint expects array of events"))
    elif len(parsed) > MAX_EVENTS_PER_REQUEST:
        return Reply(200, legacy_error("Batch too large"))
    else:
        raw_events = parsed
    results: list[dict[str, Any]] = []
    valid: list[ValidEvent] = []
    rejected: list[tuple[int, object]] = []
    for index, raw in enumerate(raw_events):
        event, errors = validate_legacy_event(
            raw,
            now_ms=request.received_at,
            client_id=client_id,
            new_event_id=lambda: str(uuid.uuid4()),
        )
        if event is None:
            results.append(legacy_error("Invalid event schema", errors=errors))
            rejected.append((index, raw))
        else:
            valid.append(event)
            results.append({"status": "success", "type": "custom", "eventId": event.event_id})
    stored = state.store_events(
        valid,
        protocol="legacy",
        request_id=request.request_id,
        received_at=request.received_at,
        dedup=True,
    )
    names = tuple(event.name for event, ok in zip(valid, stored) if ok)
    if request.path == "/":
        return Reply(200, results[0], stored=len(names), accepted=len(valid), names=names)
    batch = {"status": "success", "batch": True, "processed": len(results), "results": results}
    return Reply(
        200,
        batch,
        stored=len(names),
        accepted=len(valid),
        names=names,
        rejected=tuple(rejected),
    )


def refusals_of(request: IngestRequest, reply: Reply) -> list[dict[str, Any]]:
    """What ``reply`` refused: the whole request, or events of a legacy batch."""
    payload = reply.payload if isinstance(reply.payload, dict) else {}
    if reply.status >= 400 or payload.get("status") == "error":
        message = str(payload.get("message") or status_message(reply.status))
        whole = refusal(
            request_id=request.request_id,
            received_at=request.received_at,
            path=request.path,
            status=reply.status,
            message=message,
            errors=payload.get("details") or payload.get("errors") or [],
            offending=request.body.data or b"",
        )
        return [whole]
    results = payload.get("results") or []
    return [
        refusal(
            request_id=request.request_id,
            received_at=request.received_at,
            path=request.path,
            status=reply.status,
            message=str(results[index].get("message")),
            errors=results[index].get("errors") or [],
            offending=raw,
            index=index,
        )
        for index, raw in reply.rejected
    ]


def first(query: Query, key: str) -> str | None:
    """The first non-empty value of query parameter ``key``."""
    values = query.get(key)
    return values[0] if values and values[0] else None


def _api_key(headers: Message) -> str | None:
    authorization = headers.get("Authorization") or ""
    scheme, _, key = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        return key.strip()
    return (headers.get("x-api-key") or "").strip() or None


def _track_website_ids(parsed: object, query_website_id: str | None) -> frozenset[str] | None:
    """The website ids a keyless ``/track`` request names, or None if an event names none."""
    events = parsed if isinstance(parsed, list) and parsed else [parsed]
    ids: set[str] = set()
    for event in events:
        website_id = event.get("websiteId") if isinstance(event, dict) else None
        if isinstance(website_id, str) and website_id:
            ids.add(website_id)
        elif query_website_id is not None:
            ids.add(query_website_id)
        else:
            return None
    return frozenset(ids)


def legacy_error(message: str, **extra: Any) -> dict[str, Any]:
    """The legacy error body ``{"status":"error","message":...}`` (answered with HTTP 200)."""
    return {"status": "error", "message": message, **extra}
