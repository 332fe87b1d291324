"""The event model: the checks and the JSON of one event, enrichment, the server's limits.

Private: nothing here is a stable API; the public names are ``databuddy_otel``'s.
"""
