"""The one Dagster Definitions loads as the webserver and daemon load it."""

import json
import os
import subprocess
import sys

SCRIPT = """
import json
import dagster as dg
from yibao.definitions import defs
# What the code server does: every job, op, sensor and schedule, names unique.
dg.Definitions.validate_loadable(defs)
repo = defs.get_repository_def()
repo.load_all_definitions()
graph = defs.resolve_asset_graph()
job = defs.resolve_job_def("yibao_run")
print(json.dumps({
    "assets": sorted(k.to_user_string() for k in graph.get_all_asset_keys()),
    "checks": sorted(c.name for c in graph.asset_check_keys),
    "executor": job.executor_def.name,
    "jobs": sorted(j.name for j in repo.get_all_jobs()),
    "sensors": sorted(s.name for s in repo.sensor_defs),
    "schedules": sorted(s.name for s in repo.schedule_defs),
}))
"""


def test_definitions_load_without_an_activated_virtualenv(tmp_path):
    # dagster-webserver -m yibao.definitions, started from a shell that never activated .venv
    env = {k: v for k, v in os.environ.items() if k not in ("PATH", "VIRTUAL_ENV")}
    env.update(PATH="/usr/bin:/bin", YIBAO_HOME=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"raw/psn_insu", "raw/setl", "marts/coverage_monthly", "warehouse/published"} <= set(
        loaded["assets"]
    )
    assert "ge_coverage_monthly" in loaded["checks"]
    assert loaded["executor"] == "in_process"
    assert {"yibao_run", "reload_region_month"} <= set(loaded["jobs"])
    assert loaded["sensors"] == ["landing_sensor"] and loaded["schedules"] == ["daily_refresh"]


def test_the_dbt_resource_overrides_methods_dagster_dbt_still_calls():
    # YibaoDbtCli replaces two private methods of DbtCliResource: if dagster-dbt renames
    # them, the overrides would silently stop saving anything.
    import inspect

    from dagster_dbt import DbtCliResource
    from dbt.version import __version__

    from yibao.config import DBT_PROJECT_DIR, ensure_venv_on_path
    from yibao.dbt import YibaoDbtCli

    ensure_venv_on_path()  # the resource looks for the dbt executable on PATH
    cli = inspect.getsource(DbtCliResource.cli)
    assert "self._cli_version" in cli and "self._initialize_dbt_core_adapter(" in cli
    resource = YibaoDbtCli(project_dir=str(DBT_PROJECT_DIR))
    assert str(resource._cli_version) == __version__
    assert resource._initialize_dbt_core_adapter(["build"]) is None


def test_dbt_builds_incrementally_on_two_threads_and_in_full_on_one(tmp_path, monkeypatch):
    # Two nodes at once pay only when the build is incremental; a first or full build
    # runs one (its queries already keep both cores busy).
    import duckdb

    from yibao.config import Settings
    from yibao.definitions import dbt_threads

    monkeypatch.delenv("YIBAO_DBT_THREADS", raising=False)
    settings = Settings(home=tmp_path)
    db = settings.build_db
    db.parent.mkdir(parents=True)
    assert dbt_threads(settings, full_refresh=False) == 1  # no warehouse yet
    con = duckdb.connect(str(db))
    con.execute("create schema intermediate")
    con.execute("create table intermediate.other (x int)")
    con.close()
    assert dbt_threads(settings, full_refresh=False) == 1  # nothing built by dbt yet
    con = duckdb.connect(str(db))
    con.execute("create table intermediate.int_settlements_netted (setl_id varchar)")
    con.close()
    assert dbt_threads(settings, full_refresh=False) == 2
    assert dbt_threads(settings, full_refresh=True) == 1
    monkeypatch.setenv("YIBAO_DBT_THREADS", "3")  # the operator's choice wins
    assert dbt_threads(settings, full_refresh=True) == 3
