"""The benchmark's report says where it was measured, read off the machine (not a fixed string)."""

import os

from bench.extractor import machine


def test_the_benchmark_names_the_machine_and_server_it_measured(any_server):
    with open("/proc/cpuinfo") as f:
        cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    described = machine(any_server.url())
    assert described.startswith(f"{os.cpu_count()} cores ({cpu})")
    assert f"PostgreSQL {any_server.version()}." in described
