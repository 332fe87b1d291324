"""Flask: the WSGI middleware around ``app.wsgi_app`` sees Flask's route templates."""

from __future__ import annotations

import pytest

flask = pytest.importorskip("flask", reason="Flask is not installed (pip install flask)")

from databuddy_otel.devserver import DevServer  # noqa: E402
from databuddy_otel.web import DatabuddyWSGIMiddleware  # noqa: E402
from tests.conftest import MakeClient  # noqa: E402
from tests.web.conftest import IDS  # noqa: E402


def test_flask_routes_and_ids(server: DevServer, make_client: MakeClient) -> None:
    """Events from a Flask view carry the header ids; http_request has the url rule and status."""
    client = make_client()
    app = flask.Flask(__name__)

    @app.get("/users/<int:user_id>")
    def user(user_id: int) -> dict[str, int]:
        client.track(name="profile_viewed", properties={"user_id": user_id})
        return {"id": user_id}

    app.wsgi_app = DatabuddyWSGIMiddleware(app.wsgi_app, client, track_requests=True)
    with app.test_client() as test_client:
        with test_client.get("/users/7", headers=IDS) as response:
            assert response.json == {"id": 7}
        with test_client.get("/nowhere", headers=IDS) as response:
            assert response.status_code == 404
    client.flush(timeout=5)
    viewed, request, missing = server.events()
    assert viewed["name"] == "profile_viewed"
    assert all(e["anonymousId"] == "anon_web-1" for e in (viewed, request, missing))
    assert request["properties"]["route"] == "/users/<int:user_id>"
    assert request["properties"]["status_code"] == 200
    assert "route" not in missing["properties"]  # no rule matched: no raw path by default
    assert missing["properties"]["status_code"] == 404
