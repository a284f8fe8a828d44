"""Run the Great Expectations suites of `expectations/` on a DuckDB file.

GE's SQL data source compiles every expectation to SQL that DuckDB runs, so no
table is pulled into pandas. The context is ephemeral: suites live in code, and
results go to the caller (the Dagster asset check), not to a GE store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from yibao.config import TELEMETRY_OFF

for _key, _value in TELEMETRY_OFF.items():
    os.environ.setdefault(_key, _value)  # before GE is imported: no usage statistics


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None
    unexpected_percent: float | None
    observed_value: str | None
    description: str | None = None


@dataclass(frozen=True)
class SuiteOutcome:
    suite: str
    relation: str
    success: bool
    results: list[ExpectationOutcome]

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [r for r in self.results if not r.success]

    def describe_failures(self) -> str:
        parts = []
        for f in self.failures:
            where = f"{f.column}: " if f.column else ""
            detail = (
                f"{f.unexpected_count} unexpected ({f.unexpected_percent:.2f}%)"
                if f.unexpected_count
                else f"observed {f.observed_value}"
            )
            what = f"{f.expectation} ({f.description})" if f.description else f.expectation
            parts.append(f"{where}{what} failed, {detail}")
        return "; ".join(parts)


def validate_relation(
    db_path: Path, relation: str, expectations: list, docs_root: Path | None = None
) -> SuiteOutcome:
    """Validate one `schema.table` of the DuckDB file against a list of expectations.

    docs_root: a file-backed GE project there keeps the validation results (the site is
    built by `build_quality_site`); without it, nothing is written.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    schema, table = relation.split(".", 1)
    if docs_root is None:
        context = gx.get_context(mode="ephemeral")
    else:
        context = gx.get_context(mode="file", project_root_dir=str(docs_root))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    datasource = context.data_sources.add_or_update_sql(
        name="warehouse",
        connection_string=f"duckdb:///{db_path}",
        # GE hands connections back to the pool before fetching; the pool's reset
        # would end DuckDB's lazy result ("No open result set"): stack-notes.
        kwargs={"pool_reset_on_return": None, "connect_args": {"read_only": True}},
    )
    asset = datasource.add_table_asset(name=relation, table_name=table, schema_name=schema)
    batch_definition = asset.add_batch_definition_whole_table("whole")
    suite = gx.ExpectationSuite(name=relation, expectations=expectations)
    try:
        if docs_root is None:
            result = batch_definition.get_batch().validate(suite)
        else:
            suite = context.suites.add_or_update(suite)
            definition = context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=relation, data=batch_definition, suite=suite)
            )
            checkpoint = context.checkpoints.add_or_update(
                # The result is stored; the site is rebuilt once a run (build_quality_site).
                gx.Checkpoint(name=relation, validation_definitions=[definition], actions=[])
            )
            result = next(iter(checkpoint.run().run_results.values()))
    finally:
        # Release the file: DuckDB allows one writer, and the next step (or the next run
        # in this process) may write. GE keeps a second engine for execution: close both.
        datasource.get_execution_engine().engine.dispose()
        datasource.get_engine().dispose()
    outcomes = []
    for r in result.results:
        config = r.expectation_config
        res = r.result or {}
        observed = res.get("observed_value")
        outcomes.append(
            ExpectationOutcome(
                expectation=config.type,
                column=config.kwargs.get("column"),
                success=bool(r.success),
                unexpected_count=res.get("unexpected_count"),
                unexpected_percent=res.get("unexpected_percent"),
                observed_value=None if observed is None else str(observed),
                description=getattr(config, "description", None),
            )
        )
    return SuiteOutcome(relation, relation, bool(result.success), outcomes)


def quality_site(docs_root: Path) -> Path:
    """Where the Data Docs site of a file-backed GE project is (index.html inside)."""
    return docs_root / "gx" / "uncommitted" / "data_docs" / "local_site"


# Validation results kept per suite for the Data Docs site: the site's cost (and disk)
# must not grow with every run a deployment ever made.
KEEP_RESULTS = 20


def build_quality_site(docs_root: Path, keep: int = KEEP_RESULTS) -> Path:
    """Keep each suite's newest `keep` results and rebuild the Data Docs site once."""
    import shutil

    import great_expectations as gx

    store = docs_root / "gx" / "uncommitted" / "validations"
    for suite_dir in {p.parent.parent.parent for p in store.rglob("*.json")}:
        results = sorted(suite_dir.rglob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in results[:-keep]:
            old.unlink()
    site = quality_site(docs_root)
    shutil.rmtree(site / "validations", ignore_errors=True)  # pages of pruned results
    gx.get_context(mode="file", project_root_dir=str(docs_root)).build_data_docs()
    return site / "index.html"


DQ_RESULTS_DDL = """
create table if not exists marts.dq_results (
    run_id varchar,
    suite varchar,
    relation varchar,
    blocking boolean,
    expectation varchar,
    column_name varchar,
    description varchar,
    success boolean,
    unexpected_count bigint,
    unexpected_percent double,
    observed_value varchar,
    checked_at timestamp
)
"""


def record_results(settings, run_id: str, suite, outcome: SuiteOutcome) -> None:
    """Append one row per expectation to marts.dq_results in the build database (a log
    of every run, published with the marts, kept when a run is blocked)."""
    import duckdb

    con = duckdb.connect(str(settings.build_db), config=settings.duckdb_config())
    try:
        con.execute("create schema if not exists marts")
        con.execute(DQ_RESULTS_DDL)
        con.executemany(
            "insert into marts.dq_results values "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp)",
            [
                (
                    run_id,
                    suite.name,
                    suite.relation,
                    suite.blocking,
                    r.expectation,
                    r.column,
                    r.description,
                    r.success,
                    r.unexpected_count,
                    r.unexpected_percent,
                    r.observed_value,
                )
                for r in outcome.results
            ],
        )
    finally:
        con.close()
