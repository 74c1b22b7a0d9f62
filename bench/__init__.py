"""Benchmarks (`make bench`). Goals live here, never in timed unit tests."""
