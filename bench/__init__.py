"""Benchmarks of databuddy_otel against its peers; run ``python3 bench/run.py``."""
