"""The plumbing behind the public front doors: OpenTelemetry data to events, the exporters'
outlets, web middleware.

Private: nothing here is a stable API; the public names are ``databuddy_otel``'s.
"""
