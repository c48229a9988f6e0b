"""Benchmark drivers of the local stack (``make bench-*``); see ``bench/README.md``."""
