"""The queue: admission, OpenTelemetry's batch machinery, senders, settlement and the
ledger.

Private: nothing here is a stable API; the public names are ``databuddy_otel``'s.
"""
