"""Dagster wiring: extract assets, dbt assets, GX checks, finance reports, jobs and schedules."""
