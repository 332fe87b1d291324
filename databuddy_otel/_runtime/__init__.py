"""The process around the SDK: settings, its log, thread roles, exit hooks and signals.

Private: nothing here is a stable API; the public names are ``databuddy_otel``'s.
"""
