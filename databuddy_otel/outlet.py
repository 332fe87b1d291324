"""The exporters' way out: check, serialize, send and settle the events they found.

An exporter maps OpenTelemetry data to event dicts (:mod:`databuddy_otel.otel_events`);
its :class:`Outlet` checks and serializes them for the wire, sends them through a
:class:`~databuddy_otel.delivery.Delivery` (retries within the deadline) and
settles them in a :class:`~databuddy_otel.ledger.Ledger`: its own for a standalone
exporter; for one built with ``client=``, the client's ledger and a share of the
client's connection pool and outage state, which stays usable whichever of the
client and the OpenTelemetry provider shuts down first. These events never sit in
the client's queue: the exporter's own batch processor batches them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional

from typing_extensions import TypedDict

from databuddy_otel import config, sdk_log
from databuddy_otel.delivery import Delivery, Failure, Reachability, RetryPolicy
from databuddy_otel.event import InvalidEvent, Prepared, serialize
from databuddy_otel.ids import uuid4_text
from databuddy_otel.ledger import Ledger
from databuddy_otel.models import EXPORT_ERROR, INVALID, Stats, Undelivered
from databuddy_otel.protocol import Wire
from databuddy_otel.settlement import warn_retries_exhausted
from databuddy_otel.transport import RequestsTransport, SharedTransport, Transport, Verify

if TYPE_CHECKING:
    from databuddy_otel.client import Databuddy

logger = logging.getLogger("databuddy")


class Outlet:
    """Serialize, send and settle the events one exporter found."""

    def __init__(
        self,
        delivery: Delivery,
        ledger: Ledger,
        *,
        legacy: bool,
        defaults: dict[str, str] | None = None,
        dedup: bool = True,
        disabled: bool = False,
    ) -> None:
        self.delivery = delivery
        self.ledger = ledger
        self.legacy = legacy
        self.defaults = defaults or {}
        self.dedup = dedup
        self.disabled = disabled

    @classmethod
    def standalone(cls, settings: config.Settings) -> Outlet:
        """A delivery and a ledger of its own, built like the client's."""
        log = sdk_log.resolve(None, settings.debug)
        ledger = Ledger(
            log=log,
            dedup_size=settings.max_deduplication_cache_size,
            on_undelivered=settings.on_undelivered,
        )
        transport = settings.transport or RequestsTransport(verify=settings.verify)
        delivery = Delivery(
            Wire(settings.api_url, settings.legacy, settings.client_id, settings.api_key),
            SharedTransport(transport),
            log=log,
            timeout=settings.timeout,
            policy=RetryPolicy(deadline=settings.retry_deadline),
            reachability=Reachability(log),
        )
        return cls(
            delivery,
            ledger,
            legacy=settings.legacy,
            defaults=settings.event_defaults,
            dedup=settings.enable_deduplication,
            disabled=settings.disabled,
        )

    @classmethod
    def of_client(cls, client: Databuddy) -> Outlet:
        """The client's ledger and a share of its transport; the client keeps owning them."""
        return client._outlet()

    def prepare(self, events: Iterable[dict[str, Any]]) -> list[Prepared]:
        """Fill ids and defaults, check and serialize; invalid and duplicate events are counted."""
        prepared: list[Prepared] = []
        invalid: list[Undelivered] = []
        for event in events:
            caller_id = event.get("eventId") is not None
            if not caller_id:
                event["eventId"] = uuid4_text()
            for key, value in self.defaults.items():
                if event.get(key) is None:
                    event[key] = value
            try:
                body = serialize(event, legacy=self.legacy)
            except InvalidEvent as exc:
                event_id = event.get("eventId")
                invalid.append(
                    Undelivered(
                        event_id if isinstance(event_id, str) else None,
                        event.get("name"),
                        INVALID,
                        str(exc),
                    )
                )
                continue
            event_id = str(event["eventId"])
            if caller_id and self.dedup and not self.ledger.claim(event_id):
                continue
            prepared.append(Prepared(body, event["name"], event_id, caller_id))
        if invalid:
            logger.warning(
                "Databuddy dropped %d invalid event(s) from OpenTelemetry data; first: %s",
                len(invalid),
                invalid[0].error,
            )
            self.ledger.count(INVALID, invalid)
        return prepared

    def deliver(self, bodies: Sequence[str]) -> list[Optional[Failure]]:
        """Send ``bodies`` within one retry deadline; one result per event, never raises."""
        try:
            deadline = time.monotonic() + self.delivery.policy.deadline
            return self.delivery.send(bodies, deadline=deadline)
        except Exception as exc:
            logger.exception("Exporting %d Databuddy event(s) failed", len(bodies))
            return [Failure(EXPORT_ERROR, f"export failed: {type(exc).__name__}")] * len(bodies)

    def settle(self, prepared: Sequence[Prepared], errors: Sequence[Optional[Failure]]) -> None:
        """Record the outcome; these events never took room in a client's queue."""
        try:
            meta = [(p.event_id, p.name, p.caller_id) for p in prepared]
            self.ledger.settle(meta, errors)
            warn_retries_exhausted(logger, errors)
        except Exception:
            logger.exception("Recording the outcome of %d Databuddy event(s) failed", len(prepared))

    def send(self, prepared: Sequence[Prepared]) -> bool:
        """Deliver and settle ``prepared``; ``True`` when the server accepted every one."""
        errors = self.deliver([p.body for p in prepared])
        self.settle(prepared, errors)
        return not any(errors)

    def stats(self) -> Stats:
        return self.ledger.snapshot()

    def close(self) -> None:
        """Stop retries and give back this outlet's share of the transport."""
        self.delivery.stop()
        try:
            self.delivery.transport.close()
        except Exception:
            logger.debug("Closing the transport failed", exc_info=True)


class ConnectionOptions(TypedDict, total=False):
    """The client settings an exporter takes (each falls back to ``DATABUDDY_*``)."""

    client_id: Optional[str]
    api_key: Optional[str]
    api_url: Optional[str]
    protocol: Optional[str]
    website_id: Optional[str]
    namespace: Optional[str]
    source: Optional[str]
    debug: Optional[bool]
    timeout: Optional[float]
    retry_deadline: Optional[float]
    enable_deduplication: Optional[bool]
    max_deduplication_cache_size: Optional[int]
    disabled: Optional[bool]
    on_undelivered: Optional[Callable[[list[Undelivered]], None]]
    verify: Optional[Verify]
    transport: Optional[Transport]


class OutletExporter:
    """What both exporters do the same way once they have an :class:`Outlet`."""

    _outlet: Outlet
    _shut_down: bool

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """``True`` at once: each ``export()`` has sent its events before it returned."""
        # Nothing is buffered here: each export() sends before it returns.
        return True

    def shutdown(self) -> None:
        """Stop: interrupt retries in progress and close the transport (not a client's)."""
        if self._shut_down:
            return
        self._shut_down = True
        self._outlet.close()

    def stats(self) -> Stats:
        """Counters of the events this exporter sent (the client's, with ``client=``)."""
        return self._outlet.stats()


def build(client: Databuddy | None, options: Mapping[str, Any], owner: str) -> Outlet:
    """An outlet for an exporter's constructor: ``client=`` or settings, not both."""
    unknown = sorted(set(options) - set(ConnectionOptions.__annotations__))
    if unknown:
        raise TypeError(
            f"{owner} got unexpected option(s) {', '.join(unknown)}; it takes client=, "
            f"include_trace_ids= or {', '.join(ConnectionOptions.__annotations__)}"
        )
    given = {key: value for key, value in options.items() if value is not None}
    if client is not None:
        if given:
            raise ValueError(
                f"pass client=... or connection settings ({', '.join(sorted(given))}), not both: "
                "an exporter built with client= uses that client's settings"
            )
        return Outlet.of_client(client)
    return Outlet.standalone(config.resolve(**given))
