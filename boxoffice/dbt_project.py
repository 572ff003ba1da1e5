"""What the dbt project declares, for code outside dbt: relation names from its manifest and its vars.

Checks and reports name dbt relations through here (as dbt's own `ref` and `source` would), so a model
moved to another schema or given an alias is followed, never hard-coded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from boxoffice.settings import DBT_PROJECT_DIR

MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"


class ManifestError(Exception):
    """The dbt manifest is missing or does not know a name."""


def _project_files_mtime() -> float:
    files = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in ("models", "macros", "tests", "seeds", "snapshots", "analyses"):
        files += [p for p in (DBT_PROJECT_DIR / folder).rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in files if p.exists())


def ensure_manifest() -> Path:
    """target/manifest.json, parsed again when a project file is newer (dagster-dbt and the checks read it;
    dagster-dbt writes each run's artifacts to a folder of its own, so nothing else refreshes it)."""
    if MANIFEST.exists() and MANIFEST.stat().st_mtime >= _project_files_mtime():
        return MANIFEST
    dbt = os.path.join(os.path.dirname(sys.executable), "dbt")
    subprocess.run(
        [dbt, "parse", "--quiet", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)],
        check=True,
        cwd=DBT_PROJECT_DIR,
    )
    return MANIFEST


def prune_runs(target: Path, prefix: str, keep: int = 5) -> list[Path]:
    """Keep the artifacts of the last `keep` runs: dagster-dbt writes each run to a folder of its own under
    target/, which otherwise grows without bound (hundreds of MB after a few dozen runs)."""
    runs = sorted((p for p in target.glob(f"{prefix}*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    removed = runs[:-keep] if keep else runs
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed


@cache
def _manifest(path: Path, mtime: float) -> dict:
    return json.loads(path.read_text())


def manifest(path: Path = MANIFEST) -> dict:
    if not path.exists():
        raise ManifestError(f"{path} does not exist: run `dbt parse` (or any boxoffice run) first")
    return _manifest(path, path.stat().st_mtime)


@dataclass(frozen=True)
class Relation:
    """schema.identifier, without the database: the manifest's database is whatever the parse saw."""

    schema: str
    identifier: str

    def __str__(self) -> str:
        return ".".join('"' + part.replace('"', '""') + '"' for part in (self.schema, self.identifier))


def ref(name: str) -> Relation:
    """The relation of a dbt model, like `{{ ref(name) }}`."""
    for node in manifest()["nodes"].values():
        if node["resource_type"] in ("model", "seed", "snapshot") and node["name"] == name:
            return Relation(node["schema"], node["alias"])
    raise ManifestError(f"the dbt project has no model named {name!r}")


def source(source_name: str, table: str) -> Relation:
    """The relation of a dbt source table, like `{{ source(source_name, table) }}`."""
    for node in manifest()["sources"].values():
        if node["source_name"] == source_name and node["name"] == table:
            return Relation(node["schema"], node["identifier"])
    raise ManifestError(f"the dbt project has no source {source_name}.{table}")


@cache
def project_vars() -> dict:
    """The vars of dbt_project.yml, as written there (the one place each business threshold lives)."""
    return yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]


def var(name: str):
    try:
        return project_vars()[name]
    except KeyError:
        raise ManifestError(f"dbt_project.yml has no var {name!r}") from None


def newest_loaded_at(conn, source: dict):
    """The newest value of a dbt source's loaded_at_field (its freshness), None when the table is empty; `source` is
    the source's node in the manifest. A table not in the warehouse raises psycopg's UndefinedTable."""
    from psycopg import sql

    table = sql.Identifier(source["schema"], source["identifier"])
    query = sql.SQL("select max({}) from {}").format(sql.Identifier(source["loaded_at_field"]), table)
    return conn.execute(query).fetchone()[0]
