"""Benchmarks (`make bench`, `make bench-pipeline`): above the CLI's layers, they run them as a user would."""
