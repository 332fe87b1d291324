"""Options from a framework's settings: ``DATABUDDY = {...}`` and ``DATABUDDY_*`` entries.

Django's ``settings.py`` and Flask's ``app.config`` hold the SDK's options either as
one dictionary (``DATABUDDY = {"client_id": "...", "track_requests": True}``) or as
upper-case entries (``DATABUDDY_CLIENT_ID = "..."``). Both forms name the client's
options and the web middleware's; anything else is a mistake, reported with the
closest name. Options set in neither place fall back to the environment, as for
``Databuddy(...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from databuddy_otel._runtime import config

#: The web middleware's keyword options (databuddy_otel.web).
MIDDLEWARE_OPTIONS = ("track_requests", "event_name", "raw_path_fallback", "ids_from")

PREFIX = "DATABUDDY_"


def split(entries: Mapping[str, Any], *, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(client options, middleware options)`` from the ``DATABUDDY`` entries of a settings
    mapping (other entries are ignored).

    Raises:
        TypeError: ``DATABUDDY`` is not a dictionary, or names an unknown option.
        ValueError: An option is given both ways.
    """
    whole = entries.get("DATABUDDY") or {}
    if not isinstance(whole, Mapping):
        raise TypeError(f"DATABUDDY in {where} must be a dict of options, not {whole!r}")
    options = dict(whole)
    for name, value in entries.items():
        if not name.startswith(PREFIX):
            continue
        option = name[len(PREFIX) :].lower()
        if option in options:
            raise ValueError(f"{where} sets {option!r} twice: in DATABUDDY and as {name}")
        options[option] = value
    config.check_names(options, (*config.CLIENT_ARGUMENTS, *MIDDLEWARE_OPTIONS), where)
    middleware = {k: options.pop(k) for k in MIDDLEWARE_OPTIONS if k in options}
    return options, middleware


def check_middleware(options: Mapping[str, Any], *, where: str) -> None:
    """A ``TypeError`` naming the closest option for each unknown middleware keyword."""
    config.check_names(options, MIDDLEWARE_OPTIONS, where)
