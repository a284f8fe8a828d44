"""The sensor on landing/, the daily schedule and the month × region reload, on real files."""

import time

import dagster as dg
import duckdb
import pytest

from yibao.config import Settings
from yibao.ingest.loader import ingest
from yibao.ingest.pseudonym import load_key
from yibao.pipeline import RunLock
from yibao.simulate.generator import generate


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("YIBAO_HOME", str(tmp_path))
    generate(tmp_path, "tiny", "2024-01:2024-02", ["37"], seed=5)
    from yibao.definitions import defs

    return Settings.from_env(), defs


def test_sensor_requests_a_run_for_new_files_once_and_registers_partitions(world):
    settings, defs = world
    sensor = defs.resolve_sensor_def("landing_sensor")
    with dg.DagsterInstance.ephemeral() as instance:
        first = dg.build_sensor_context(instance=instance)
        result = sensor(first)
        assert isinstance(result, dg.RunRequest) and result.run_key == first.cursor
        assert instance.get_dynamic_partitions("landing_month") == ["2024-01", "2024-02"]
        assert set(instance.get_dynamic_partitions("landing_region")) >= {"370100", "370200"}

        again = dg.build_sensor_context(instance=instance, cursor=first.cursor)
        assert isinstance(sensor(again), dg.SkipReason)

        # A file lands while a run holds the lock: wait for the next tick, cursor kept.
        (settings.landing / "population" / "period=2024-01" / "admdvs=100000" / "x.csv").write_text(
            "admdvs,year,resident_pop\n370100,2024,100\n"
        )
        busy = dg.build_sensor_context(instance=instance, cursor=first.cursor)
        with RunLock(settings.run_lock):
            skipped = sensor(busy)
        assert isinstance(skipped, dg.SkipReason) and "in progress" in skipped.skip_message
        assert busy.cursor == first.cursor
        assert isinstance(sensor(busy), dg.RunRequest) and busy.cursor != first.cursor


def test_schedule_runs_nightly_in_china_standard_time(world):
    _, defs = world
    schedule = defs.resolve_schedule_def("daily_refresh")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "Asia/Shanghai"
    assert schedule.job_name == "yibao_run"


def test_reload_replaces_one_region_month_and_nothing_else(world):
    settings, defs = world
    settings.build_db.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.build_db))
    ingest(con, settings.landing, settings.home / "scratch", load_key(settings.secrets))
    before = dict(con.execute("select path, processed_at from ops.batches").fetchall())
    rows = con.execute("select count(*) from raw.setl").fetchall()
    con.close()
    time.sleep(0.01)

    job = defs.resolve_job_def("reload_region_month")
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("landing_month", ["2024-02"])
        instance.add_dynamic_partitions("landing_region", ["370100"])
        result = job.execute_in_process(
            instance=instance,
            partition_key=dg.MultiPartitionKey({"month": "2024-02", "region": "370100"}),
        )
    assert result.success

    con = duckdb.connect(str(settings.build_db), read_only=True)
    after = dict(con.execute("select path, processed_at from ops.batches").fetchall())
    assert con.execute("select count(*) from raw.setl").fetchall() == rows
    con.close()
    changed = {p for p in before if after[p] != before[p]}
    assert changed and all("/period=2024-02/admdvs=370100/" in p for p in changed)
    assert {p for p in before if "/period=2024-02/admdvs=370100/" in p} == changed
