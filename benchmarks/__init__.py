"""Speed measurements (not tests): run as ``python -m benchmarks.NAME``."""
