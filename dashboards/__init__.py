"""Metabase dashboards as code: the declarations (catalog.py), the rules they keep (spec.py), their SQL as
Metabase runs it (sql.py), the client (client.py), the idempotent sync (sync.py, publish.py) and the dbt
exposures generated from them (exposures.py)."""
