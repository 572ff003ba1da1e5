"""Metabase collections, questions and dashboards provisioned from code (not built yet: see README)."""
