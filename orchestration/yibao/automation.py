"""What runs without an operator: a sensor on `landing/`, a daily schedule, and a
reload of one month × sending region that an operator can backfill from the UI.

The Dagster daemon (started by `yibao serve`) evaluates the sensor and the schedule.
Set `YIBAO_AUTOMATION=off` to load them stopped (tests, or a bureau that only runs
`yibao run` from its own scheduler).
"""

import contextlib
import fcntl
import hashlib
import os
import re
from pathlib import Path

import dagster as dg

from yibao.config import Settings

MONTHS = dg.DynamicPartitionsDefinition(name="landing_month")
REGIONS = dg.DynamicPartitionsDefinition(name="landing_region")
REGION_MONTHS = dg.MultiPartitionsDefinition({"month": MONTHS, "region": REGIONS})
_PARTITION = re.compile(r"^[a-z_]+/period=(\d{4}-\d{2})/admdvs=(\d{6})/")


def _status() -> dg.DefaultSensorStatus:
    on = os.environ.get("YIBAO_AUTOMATION", "on").lower() != "off"
    return dg.DefaultSensorStatus.RUNNING if on else dg.DefaultSensorStatus.STOPPED


def _schedule_status() -> dg.DefaultScheduleStatus:
    on = _status() == dg.DefaultSensorStatus.RUNNING
    return dg.DefaultScheduleStatus.RUNNING if on else dg.DefaultScheduleStatus.STOPPED


class RunLockResource(dg.ConfigurableResource):
    """Holds the home's run lock for the whole run (in-process executor: one process)."""

    @contextlib.contextmanager
    def yield_for_execution(self, context):
        from yibao.pipeline import RunLock

        with RunLock(Settings.from_env().run_lock):
            yield self


def landing_state(landing: Path) -> tuple[str, list[str]]:
    """A fingerprint of the landing folder (paths, sizes, modification times) and its
    paths: cheap, no file is read."""
    entries = []
    for path in sorted(landing.rglob("*")):
        if path.is_file() and not path.name.endswith(".part"):
            st = path.stat()
            entries.append(f"{path.relative_to(landing).as_posix()}:{st.st_size}:{st.st_mtime_ns}")
    digest = hashlib.sha256("\n".join(entries).encode()).hexdigest()
    return digest, [e.rsplit(":", 2)[0] for e in entries]


def _busy(lock: Path) -> bool:
    if not lock.exists():
        return False
    with lock.open("a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def _published_paths(settings: Settings) -> set[str]:
    import duckdb

    if not settings.live_db.exists():
        return set()
    con = duckdb.connect(str(settings.live_db.resolve()), read_only=True)
    try:
        return {r[0] for r in con.execute("select path from ops.batches").fetchall()}
    except duckdb.Error:
        return set()
    finally:
        con.close()


def _register_partitions(instance: dg.DagsterInstance, paths: list[str]) -> None:
    months, regions = set(), set()
    for rel in paths:
        match = _PARTITION.match(rel)
        if match:
            months.add(match[1])
            regions.add(match[2])
    for definition, keys in ((MONTHS, months), (REGIONS, regions)):
        new = sorted(keys - set(instance.get_dynamic_partitions(definition.name)))
        if new:
            instance.add_dynamic_partitions(definition.name, new)


def build(yibao_run):
    """The sensor, the schedule and the reload job, for the definitions' main job."""

    @dg.sensor(
        job=yibao_run,
        name="landing_sensor",
        minimum_interval_seconds=60,
        default_status=_status(),
        description="A run when files land or change under landing/ (not while one runs)",
    )
    def landing_sensor(context: dg.SensorEvaluationContext):
        settings = Settings.from_env()
        if not settings.landing.exists():
            return dg.SkipReason(f"no landing folder at {settings.landing}")
        fingerprint, paths = landing_state(settings.landing)
        _register_partitions(context.instance, paths)
        if context.cursor == fingerprint:
            return dg.SkipReason("no new or changed landing file")
        if context.cursor is None and set(paths) <= _published_paths(settings):
            context.update_cursor(fingerprint)  # first look: everything is already published
            return dg.SkipReason("every landing file is already in the published ledger")
        if _busy(settings.run_lock):
            return dg.SkipReason("a run is in progress; the next tick looks again")
        context.update_cursor(fingerprint)
        return dg.RunRequest(run_key=fingerprint)

    daily_refresh = dg.ScheduleDefinition(
        name="daily_refresh",
        job=yibao_run,
        cron_schedule="0 2 * * *",
        execution_timezone="Asia/Shanghai",
        default_status=_schedule_status(),
        description="Every night at 02:00 China Standard Time: ingest, build, check, publish",
    )

    @dg.op
    def reload_batches(context: dg.OpExecutionContext, run_lock: RunLockResource) -> None:
        """Read one month × sending region of landing again, every feed, replacing its rows."""
        import duckdb

        from yibao.ingest.loader import ingest
        from yibao.ingest.pseudonym import load_key

        keys = context.partition_key.keys_by_dimension
        month, region = keys["month"], keys["region"]
        pattern = re.compile(rf"^[a-z_]+/period={month}/admdvs={region}/")
        settings = Settings.from_env()
        con = duckdb.connect(str(settings.build_db), config=settings.duckdb_config())
        try:
            report = ingest(
                con,
                settings.landing,
                settings.home / "scratch",
                load_key(settings.secrets),
                only=lambda rel: bool(pattern.match(rel)),
                force=True,
            )
        finally:
            con.close()
        context.log.info(f"{month} × {region}: {report.summary()}; the next run publishes it")
        for batch in report.batches:
            if batch.outcome != "loaded":
                context.log.warning(f"{batch.path}: {batch.outcome}: {batch.reason}")

    @dg.job(
        name="reload_region_month",
        partitions_def=REGION_MONTHS,
        executor_def=dg.in_process_executor,
        description="Reload one month × sending region from landing (backfill from the UI)",
    )
    def reload_job():
        reload_batches()

    return landing_sensor, daily_refresh, reload_job
