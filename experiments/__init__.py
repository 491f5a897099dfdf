"""Runnable studies: ``python -m experiments.NAME --help``."""
