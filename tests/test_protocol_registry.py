"""Protocols are strategy objects chosen by name: a new one is a class and its registration."""

from __future__ import annotations

from pathlib import Path

import pytest

from databuddy_otel._event.event import serialize
from databuddy_otel._wire.protocol import PROTOCOLS, Track
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient


def test_a_new_protocol_is_one_class_and_its_registration(
    server: DevServer, make_client: MakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A protocol registered in PROTOCOLS is chosen by name: its URL, headers and body
    carry the events, and the spool reads back what it serialized."""

    sent: list[int] = []

    class Tagged(Track):
        name = "tagged"

        def body(self, events: list[str], *, batch: bool) -> bytes:
            sent.append(len(events))
            return super().body(events, batch=batch)

    monkeypatch.setitem(PROTOCOLS, "tagged", Tagged())
    client = make_client(protocol="tagged", spool_dir=str(tmp_path), batch_size=5)
    for n in range(10):
        client.track(name="signup", event_id=f"tagged-{n}")
    assert client.flush(timeout=5).success
    assert sorted(e["eventId"] for e in server.events()) == [f"tagged-{n}" for n in range(10)]
    assert sum(sent) == 10
    with pytest.raises(ValueError, match="'track' or 'legacy' or 'tagged'"):
        make_client(protocol="toy")


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_the_spool_reads_back_the_name_and_id_each_protocol_wrote(name: str) -> None:
    protocol = PROTOCOLS[name]
    event = {"name": 'say "hi"', "eventId": "id-1", "timestamp": 1_700_000_000_000}
    assert protocol.identity(serialize(event, protocol=protocol)) == ('say "hi"', "id-1")
    assert protocol.identity("not json") == ("", "")
