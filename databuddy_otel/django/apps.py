"""The Django app of ``databuddy_otel.django``: the client is made when Django is ready."""

from __future__ import annotations

from django.apps import AppConfig


class DatabuddyConfig(AppConfig):  # type: ignore[misc]  # AppConfig is untyped
    """Makes the default client from ``DATABUDDY`` / ``DATABUDDY_*`` once per process."""

    name = "databuddy_otel.django"
    label = "databuddy"
    verbose_name = "Databuddy analytics"

    def ready(self) -> None:
        from databuddy_otel.django import configure

        configure()
