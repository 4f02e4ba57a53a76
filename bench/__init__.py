"""Benchmarks against raw HTTP on the same server: ``python -m bench [--quick] [--only NAME]``."""
