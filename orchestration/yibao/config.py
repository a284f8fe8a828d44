"""Settings from the environment, in one place.

Every path the product writes lives under the home folder (``--home``, else
``YIBAO_HOME``, else ``./var``), so that one folder is one deployment.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

# The repository root: the dbt project and the expectation suites are read from it.
REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"

# Telemetry of every tool in the stack stays off: a bureau's network must see no
# outbound call from the warehouse (stack-notes).
TELEMETRY_OFF = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "False",
    "SCARF_ANALYTICS": "false",
}

# DuckDB shares the machine with Dagster, Superset and the browser: cap it.
DEFAULT_MEMORY_LIMIT = "4GB"
DEFAULT_THREADS = 2


def ensure_venv_on_path() -> None:
    """dbt is a console script of this virtualenv; a caller need not activate it."""
    venv_bin = str(Path(sys.executable).parent)
    if venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")


@dataclass(frozen=True)
class Settings:
    home: Path
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    threads: int = DEFAULT_THREADS

    @classmethod
    def from_env(cls, home: str | os.PathLike[str] | None = None) -> Settings:
        chosen = home or os.environ.get("YIBAO_HOME") or "var"
        return cls(
            home=Path(chosen).resolve(),
            memory_limit=os.environ.get("YIBAO_DUCKDB_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT),
            threads=int(os.environ.get("YIBAO_DUCKDB_THREADS", DEFAULT_THREADS)),
        )

    # -- folders -----------------------------------------------------------
    @property
    def quality(self) -> Path:
        """Great Expectations' project: every run's results and the Data Docs site."""
        return self.home / "quality"

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def truth(self) -> Path:
        return self.home / "truth"

    @property
    def build_db(self) -> Path:
        """The working database that ingestion and dbt write; never read by users."""
        return self.home / "build" / "warehouse.duckdb"

    @property
    def versions_dir(self) -> Path:
        return self.home / "warehouse" / "versions"

    @property
    def live_db(self) -> Path:
        """Symlink to the published version: what `yibao sql` and Superset open."""
        return self.home / "warehouse" / "live.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def secrets(self) -> Path:
        return self.home / "secrets"

    @property
    def run_lock(self) -> Path:
        return self.home / "run.lock"

    def duckdb_config(self) -> dict[str, str | int | bool]:
        # No extension is ever downloaded at run time: the machine has no internet.
        return {
            "memory_limit": self.memory_limit,
            "threads": self.threads,
            "autoinstall_known_extensions": False,
        }

    def export_env(self) -> None:
        """Expose the settings to child processes (dbt, Dagster) and switch telemetry off."""
        for key, value in TELEMETRY_OFF.items():
            os.environ.setdefault(key, value)
        os.environ["YIBAO_HOME"] = str(self.home)
        os.environ["YIBAO_BUILD_DB"] = str(self.build_db)
        os.environ["YIBAO_DUCKDB_MEMORY_LIMIT"] = self.memory_limit
        os.environ["YIBAO_DUCKDB_THREADS"] = str(self.threads)
        os.environ["DAGSTER_HOME"] = str(self.dagster_home)
        os.environ.setdefault("DBT_LOG_PATH", str(self.logs / "dbt"))
        ensure_venv_on_path()


def pause_for_crash_test(point: str, home: Path) -> None:
    """Crash tests only: when YIBAO_PAUSE_AT names this point, say so in
    `<home>/run/paused-<point>` and wait there to be killed (kill -9 at a known step)."""
    if os.environ.get("YIBAO_PAUSE_AT") != point:
        return
    import time

    marker = home / "run" / f"paused-{point}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(os.getpid()))
    time.sleep(3600)
