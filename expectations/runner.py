"""Run a GX 1.x suite of row-level SQL expectations against the warehouse and report each one.

Every expectation is an `UnexpectedRowsExpectation`: a query that returns the rows that disagree.
Queries are written like dbt SQL (`{{ ref('int_orders') }}`, `{{ source('platform', 'orders') }}`,
`{{ var('reconciliation_tolerance') }}`), so they follow the dbt project's relations and thresholds,
and name the batch GX validates as `{batch} as b`. A query that cannot run is reported as *errored*,
apart from a *failed* expectation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import jinja2

from boxoffice import dbt_project
from boxoffice.settings import DEFAULT_TIMEZONE
from boxoffice.warehouse import sqlalchemy_url

DOCS_SITE = "boxoffice"
BATCH = "{batch} as b"
_DRIVER_PREFIX = re.compile(r"^\([\w.]+\)\s*")  # SQLAlchemy's "(psycopg.errors.UndefinedColumn) "


@dataclass
class ExpectationOutcome:
    name: str
    description: str
    success: bool
    errored: bool
    unexpected_count: int
    unexpected_rows: list[dict] = field(default_factory=list)
    error: str | None = None

    @property
    def error_line(self) -> str | None:
        """The first line of the database's message, as the person reading a run summary needs it."""
        if not self.error:
            return None
        return _DRIVER_PREFIX.sub("", self.error.strip()).splitlines()[0]


@dataclass(frozen=True)
class RowExpectation:
    name: str
    description: str
    query: str  # dbt-style SQL returning the rows that disagree; the validated batch is `{batch} as b`
    blocking: bool = True  # a failure means the numbers must not be published


def render(query: str, variables: dict | None = None) -> str:
    """dbt's ref/source/var resolved through the project; `{batch} as b` made valid on every PostgreSQL.

    GX aliases the batch subquery itself (`AS subselect`) unless the query has a JOIN; then it leaves it
    bare, which PostgreSQL 15 rejects. So the batch is always aliased here, in the form GX will not alias
    again (decided by GX's own test, so the two cannot disagree)."""
    from great_expectations.expectations.metrics.query_metric_provider import _query_has_join_clause

    overrides = variables or {}
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    text = env.from_string(query).render(
        ref=dbt_project.ref, source=dbt_project.source, var=lambda name: overrides.get(name, dbt_project.var(name))
    )
    if BATCH not in text:
        raise ValueError(f"an expectation must read its batch as `{BATCH}`: {query[:80]}")
    if not _query_has_join_clause(text):
        text = text.replace(BATCH, "(select * from {batch}) as b")
    return text


@dataclass(frozen=True)
class Suite:
    name: str
    batch: str | tuple[str, str]  # what GX validates: a dbt model, or a dbt (source, table)
    asset: tuple[str, ...]  # the Dagster asset the checks sit on
    expectations: tuple[RowExpectation, ...]

    def reads(self) -> tuple[set[str], set[str]]:
        """The dbt models and sources ("<source>.<table>") the suite reads: its batch and its queries' relations."""
        models, sources = set(), set()
        if isinstance(self.batch, str):
            models.add(self.batch)
        else:
            sources.add(".".join(self.batch))
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
        for e in self.expectations:
            env.from_string(e.query).render(
                ref=lambda name: models.add(name) or name,
                source=lambda s, table: sources.add(f"{s}.{table}") or table,
                var=dbt_project.var,
            )
        return models, sources

    def relation(self) -> dbt_project.Relation:
        return dbt_project.ref(self.batch) if isinstance(self.batch, str) else dbt_project.source(*self.batch)

    def validate(self, warehouse_dsn: str, timezone: str = DEFAULT_TIMEZONE, docs_dir: Path | None = None):
        variables = {"reporting_timezone": timezone}
        expectations = [replace(e, query=render(e.query, variables)) for e in self.expectations]
        relation = self.relation()
        return run_suite(warehouse_dsn, self.name, relation.schema, relation.identifier, expectations, docs_dir)


def run_suite(
    warehouse_dsn: str,
    suite_name: str,
    schema: str,
    table: str,
    expectations: list[RowExpectation],
    docs_dir: Path | None = None,
) -> list[ExpectationOutcome]:
    """Validate the table; with `docs_dir`, also render the suite and its result as GX Data Docs there."""
    checkpoint = _checkpoint(warehouse_dsn, suite_name, schema, table, expectations, docs_dir)
    (result,) = checkpoint.run().run_results.values()
    by_name = {e.name: e for e in expectations}
    outcomes = [_outcome(r, by_name) for r in result.results]
    if docs_dir is not None:
        from expectations import data_docs

        data_docs.publish(docs_dir, suite_name, schema, table, outcomes)
    return outcomes


def _checkpoint(warehouse_dsn, suite_name, schema, table, expectations, docs_dir):
    """An ephemeral GX context with the table as its batch, the suite, and (with `docs_dir`) a docs site."""
    import great_expectations as gx  # slow import: only when a check runs
    import great_expectations.expectations as gxe
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        analytics_enabled=False,  # the network is closed: GX's usage events would wait on it
        progress_bars=ProgressBarsConfig(globally=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    if docs_dir is not None:
        site = str(docs_dir / suite_name)  # one site per suite: a build removes pages its context does not know
        context.add_data_docs_site(
            site_name=DOCS_SITE,
            site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": site},
            },
        )
    source = context.data_sources.add_postgres("warehouse", connection_string=sqlalchemy_url(warehouse_dsn))
    batch = source.add_table_asset(name=table, table_name=table, schema_name=schema).add_batch_definition_whole_table(
        "whole_table"
    )
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name))
    for e in expectations:
        expectation = gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=e.query, description=e.description, meta={"name": e.name}
        )
        suite.add_expectation(expectation)
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{suite_name}_validation", data=batch, suite=suite)
    )
    actions = [UpdateDataDocsAction(name="data_docs", site_names=[DOCS_SITE])] if docs_dir is not None else []
    return context.checkpoints.add(
        gx.Checkpoint(
            name=f"{suite_name}_checkpoint",
            validation_definitions=[validation],
            actions=actions,
            result_format="COMPLETE",
        )
    )


def _outcome(r, by_name: dict[str, RowExpectation]) -> ExpectationOutcome:
    """One expectation's result: failed (rows that disagree) or errored (its query could not run)."""
    name = (r.expectation_config.meta or {}).get("name", r.expectation_config.type)
    info = r.exception_info or {}
    nested = [v for v in info.values() if isinstance(v, dict)]
    errored = bool(info.get("raised_exception")) or any(v.get("raised_exception") for v in nested)
    rows = ((r.result or {}).get("details") or {}).get("unexpected_rows")
    if hasattr(rows, "to_dict"):
        rows = rows.to_dict(orient="records")
    error = None
    if errored:
        messages = [info.get("exception_message"), *(v.get("exception_message") for v in nested)]
        error = next((str(m) for m in messages if m), "the expectation raised an error")
    return ExpectationOutcome(
        name=name,
        description=by_name[name].description,
        success=bool(r.success) and not errored,
        errored=errored,
        unexpected_count=int((r.result or {}).get("observed_value") or 0),
        unexpected_rows=list(rows or []),
        error=error,
    )
