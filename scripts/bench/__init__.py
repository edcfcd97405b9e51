"""Helpers for ``scripts/bench_vs_motion.py``: stream process, /proc sampling, programs, report."""
