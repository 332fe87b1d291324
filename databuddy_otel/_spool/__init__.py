"""The write-ahead spool: the spool thread, one file's bookkeeping, files and records.

Private: nothing here is a stable API; the public names are ``databuddy_otel``'s.
"""
