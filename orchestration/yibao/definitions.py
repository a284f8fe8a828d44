"""The one Dagster `Definitions` of Yibao.

landing files → `raw/*` (ingest) → dbt staging, intermediate and marts → Great
Expectations suites as blocking asset checks → `warehouse/published` (publish).
A failed blocking check stops the run before publish: the live version stays.
"""

import json
import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from expectations import SUITES, Suite
from yibao import automation
from yibao.automation import RunLockResource
from yibao.config import Settings, pause_for_crash_test
from yibao.dbt import DBT_PROJECT, YibaoDbtCli, ensure_manifest
from yibao.ingest.feeds import FEEDS

ensure_manifest()


def _settings() -> Settings:
    return Settings.from_env()


# -- ingest -----------------------------------------------------------------
@dg.multi_asset(
    specs=[
        dg.AssetSpec(["raw", feed.name], description=feed.description, group_name="ingest")
        for feed in FEEDS.values()
    ],
    name="ingest_landing",
)
def ingest_landing(context: dg.AssetExecutionContext, run_lock: RunLockResource):
    """Every new or changed landing file: loaded, quarantined or rejected, and recorded."""
    import duckdb

    from yibao.ingest.loader import ingest
    from yibao.ingest.pseudonym import load_key

    settings = _settings()
    settings.build_db.parent.mkdir(parents=True, exist_ok=True)
    key = load_key(settings.secrets)
    con = duckdb.connect(str(settings.build_db), config=settings.duckdb_config())
    try:
        report = ingest(con, settings.landing, settings.home / "scratch", key)
        counts = dict(
            con.execute("select feed, count(*) from ops.batches group by feed").fetchall()
        )
    finally:
        con.close()
    context.log.info(report.summary())
    # Where ingestion spent its time, for the on-call engineer and the benchmark.
    spent = sorted(report.seconds.items(), key=lambda kv: -kv[1])
    context.log.info("ingest seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in spent))
    settings.logs.mkdir(parents=True, exist_ok=True)
    (settings.logs / "ingest_seconds.json").write_text(
        json.dumps({k: round(v, 3) for k, v in spent})
    )
    problems = []  # one line per file (rejected) or record (quarantined): what and why
    for batch in report.batches:
        if batch.outcome == "rejected":
            problems.append(f"{batch.path}: rejected: {batch.reason}")
        problems.extend(batch.problems)
        if batch.rows_quarantined > len(batch.problems):
            more = batch.rows_quarantined - len(batch.problems)
            problems.append(f"{batch.path}: {more} more quarantined record(s) in ops.quarantine")
    for line in problems:
        context.log.warning(line)
    for feed in FEEDS.values():
        mine = [b for b in report.batches if b.path.startswith(feed.name + "/")]
        yield dg.MaterializeResult(
            asset_key=["raw", feed.name],
            metadata={
                "batches_processed": len(mine),
                "batches_known": counts.get(feed.name, 0),
                "rows_loaded": sum(b.rows_loaded for b in mine),
                "rows_quarantined": sum(b.rows_quarantined for b in mine),
                "batches_rejected": sum(b.outcome == "rejected" for b in mine),
                "summary": report.summary(),
                "problems": "\n".join(p for p in problems if p.startswith(feed.name + "/")),
            },
        )


# -- transform ---------------------------------------------------------------
class YibaoTranslator(DagsterDbtTranslator):
    """Asset keys follow the warehouse's schemas: `marts/coverage_monthly`, `raw/psn_insu`."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        return dbt_resource_props.get("schema") or "transform"


def dbt_threads(settings: Settings, full_refresh: bool) -> int:
    """How many dbt nodes a build runs at once (YIBAO_DBT_THREADS overrides). Two for an
    incremental build: its many short queries and single-threaded steps (inserts,
    commits, dbt's own Python) leave cores idle, and the enrollment and settlement
    branches fill them (adding a month at `medium`: 41.9 and 41.8 s against 44.8 and
    46.5 s). One for a first or full build, whose queries keep both cores busy: two at
    once only compete for them and for the shared memory limit (75 s against 68-72 s)."""
    if os.environ.get("YIBAO_DBT_THREADS"):
        return max(1, int(os.environ["YIBAO_DBT_THREADS"]))
    if full_refresh or not settings.build_db.exists():
        return 1
    import duckdb

    try:
        con = duckdb.connect(
            str(settings.build_db), read_only=True, config=settings.duckdb_config()
        )
    except duckdb.Error:  # held elsewhere: cannot tell, build as if for the first time
        return 1
    try:
        built = con.execute(
            "select count(*) from duckdb_tables() "
            "where schema_name = 'intermediate' and table_name = 'int_settlements_netted'"
        ).fetchone()[0]
    finally:
        con.close()
    return 2 if built else 1


class BuildConfig(dg.Config):
    # Rebuild the incremental models from scratch (after their logic changed).
    full_refresh: bool = False


@dbt_assets(
    manifest=DBT_PROJECT.manifest_path,
    project=DBT_PROJECT,
    dagster_dbt_translator=YibaoTranslator(),
)
def warehouse_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    run_lock: RunLockResource,
    config: BuildConfig,
):
    """dbt build once per run (seeds, models and their data tests), not once per model;
    incremental models redo only the months that new batches touch. dbt's unit tests
    check the SQL on crafted rows, not the data: they run in the test suite, and a
    run does not pay for them (as dbt advises)."""
    settings = _settings()
    target = settings.home / "dbt" / "target"
    threads = dbt_threads(settings, config.full_refresh)
    context.log.info(f"dbt build on {threads} thread(s)")
    args = [
        "build",
        "--exclude-resource-type",
        "unit_test",
        "--threads",
        str(threads),
        *(["--full-refresh"] if config.full_refresh else []),
    ]
    yield from dbt.cli(args, context=context, target_path=target).stream()


# -- validate ----------------------------------------------------------------
def _suite_check(suite: Suite) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(suite.relation.split(".")),
        name=f"ge_{suite.relation.split('.')[-1]}",
        description=(
            f"Great Expectations contract of {suite.relation} (expectations/); "
            + ("blocks publication" if suite.blocking else "warns")
        ),
        # Every check runs before publication (so its result is published with it); only
        # an ERROR stops it, and warning suites fail with WARN.
        blocking=True,
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        from yibao.publish import publish_results
        from yibao.validate import build_quality_site, record_results, validate_relation

        settings = _settings()
        outcome = validate_relation(
            settings.build_db, suite.relation, suite.build(), docs_root=settings.quality
        )
        # Every result, passed or not, blocking or not, goes to marts.dq_results.
        record_results(settings, context.run.run_id, suite, outcome)
        pause_for_crash_test("validate", settings.home)
        if suite.blocking and not outcome.success:
            # Figures stay as they were; the reason they did not move is published.
            publish_results(settings)
            build_quality_site(settings.quality)
        return dg.AssetCheckResult(
            passed=outcome.success,
            severity=dg.AssetCheckSeverity.ERROR if suite.blocking else dg.AssetCheckSeverity.WARN,
            description=outcome.describe_failures() or "all expectations met",
            metadata={
                "expectations": len(outcome.results),
                "failed": len(outcome.failures),
                "failures": outcome.describe_failures() or "none",
            },
        )

    return _check


SUITE_CHECKS = [_suite_check(suite) for suite in SUITES]


# -- publish -----------------------------------------------------------------
@dg.asset(
    key=["warehouse", "published"],
    deps=[dg.AssetKey(suite.relation.split(".")) for suite in SUITES],
    group_name="publish",
)
def published_warehouse(
    context: dg.AssetExecutionContext, run_lock: RunLockResource
) -> dg.MaterializeResult:
    """The validated marts and ops relations, copied into a new version and made live atomically."""
    from yibao.publish import publish
    from yibao.validate import build_quality_site

    settings = _settings()
    result = publish(settings)
    build_quality_site(settings.quality)  # once a run, with every suite's result
    context.log.info(f"published version {result.version} ({result.tables} tables)")
    return dg.MaterializeResult(
        metadata={"version": result.version, "path": str(result.path), "tables": result.tables}
    )


yibao_run = dg.define_asset_job(
    "yibao_run",
    selection=dg.AssetSelection.all(),
    # One process: dbt runs once, and no fresh Python per step (stack-notes).
    executor_def=dg.in_process_executor,
    description="Ingest, transform, validate, publish: what `yibao run` and the schedule do",
)

landing_sensor, daily_refresh, reload_job = automation.build(yibao_run)

defs = dg.Definitions(
    assets=[ingest_landing, warehouse_models, published_warehouse],
    asset_checks=SUITE_CHECKS,
    jobs=[yibao_run, reload_job],
    sensors=[landing_sensor],
    schedules=[daily_refresh],
    resources={
        "dbt": YibaoDbtCli(project_dir=DBT_PROJECT, profiles_dir=DBT_PROJECT.project_dir),
        # Daemon-launched runs take the run lock themselves; `yibao run` already holds it.
        "run_lock": RunLockResource(),
    },
)
