"""Benchmarks (`make bench`). Goals live here, never in timed unit tests."""

import sys


def log(line: str) -> None:
    """Progress for the person running a benchmark: stderr, as it happens (stdout carries JSON)."""
    print(line, file=sys.stderr, flush=True)
