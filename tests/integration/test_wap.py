"""Write-audit-publish under crashes (issue #7): kill -9 during the build, during
validation and during publication leaves the published version as it was, and the
next run recovers by itself; `yibao rollback` returns to the previous version."""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import YIBAO, run_yibao

pytestmark = pytest.mark.integration

FIGURES = "select * from marts.coverage_monthly order by all"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    """A home with tiny data, published once; each test works on its own copy."""
    home = tmp_path_factory.mktemp("wap") / "home"
    run_yibao(home, "generate", "--scale", "tiny", "--months", "2024-01:2024-02", "--format", "csv")
    run_yibao(home, "run")
    return home


@pytest.fixture
def home(seeded, tmp_path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(seeded, copy, symlinks=True)
    return copy


def _sql(home: Path, query: str):
    return json.loads(run_yibao(home, "sql", "--format", "json", query).stdout)


def _live(home: Path) -> Path:
    return (home / "warehouse" / "live.duckdb").resolve()


def _start_run(home: Path, pause_at: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "YIBAO_HOME": str(home)}
    if pause_at:
        env["YIBAO_PAUSE_AT"] = pause_at
    # Its own process group: kill -9 takes dbt and every helper with it.
    return subprocess.Popen(
        [YIBAO, "run", "--full-refresh"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait_for(condition, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _dbt_is_building_marts(home: Path) -> bool:
    logs = sorted((home / "logs").glob("run-*.log"))
    return bool(logs) and "START sql table model marts." in logs[-1].read_text(errors="ignore")


@pytest.mark.parametrize("phase", ["build", "validate", "publish"])
def test_kill_9_leaves_the_live_version_and_the_next_run_recovers(home, phase):
    live_before = _live(home)
    figures = _sql(home, FIGURES)
    # A new delivery makes the killed run a real change.
    for batch in (home / "landing" / "setl").rglob("*.csv"):
        batch.touch()
    proc = _start_run(home, pause_at=None if phase == "build" else phase)
    try:
        if phase == "build":
            _wait_for(lambda: _dbt_is_building_marts(home), "dbt to build the marts")
        else:
            marker = home / "run" / f"paused-{phase}"
            _wait_for(marker.exists, f"the run to reach {phase}")
        # Readers are never blocked, even now.
        assert _sql(home, FIGURES) == figures
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    (home / "run" / f"paused-{phase}").unlink(missing_ok=True)
    assert _live(home) == live_before
    assert _sql(home, FIGURES) == figures

    run_yibao(home, "run")  # no manual clean-up
    assert _live(home) != live_before
    assert _sql(home, FIGURES) == figures
    assert not list((home / "warehouse" / "versions").glob("*.part"))


def test_rollback_returns_to_the_previous_version(home):
    first = _live(home)
    run_yibao(home, "run", "--full-refresh")
    second = _live(home)
    assert second != first
    proc = run_yibao(home, "rollback")
    assert first.stem in proc.stdout
    assert _live(home) == first
    assert _sql(home, "select kind from ops.publication") == [{"kind": "full"}]
    again = run_yibao(home, "rollback", check=False)
    assert again.returncode == 1
    assert again.stderr.strip().startswith("yibao: no earlier published version")
