"""Extract: platform PostgreSQL tables and the Mollie API into the warehouse's `raw` schema.

Knows nothing of dbt. Every raw table carries `_loaded_at` and `_batch_id`.
"""
