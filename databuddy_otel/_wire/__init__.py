"""The wire: protocols, retries and the outage rule, the transport and its watchdog.

Private: nothing here is a stable API; the public names are ``databuddy_otel``'s.
"""
