"""The dbt project as Dagster sees it, kept apart so it can be prepared before import.

`@dbt_assets` reads `target/manifest.json` when the definitions are imported; on a
fresh clone it does not exist yet (stack-notes), so `ensure_manifest()` runs
`dbt parse` first whenever the manifest is missing or older than the project.
"""

from __future__ import annotations

from pathlib import Path

from dagster_dbt import DbtProject

from yibao.config import DBT_PROJECT_DIR, ensure_venv_on_path

DBT_PROJECT = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

_SOURCES = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "tests")


def _newest_source_mtime(project_dir: Path) -> float:
    newest = 0.0
    for name in _SOURCES:
        path = project_dir / name
        files = [path] if path.is_file() else path.rglob("*") if path.exists() else []
        for f in files:
            if f.is_file():
                newest = max(newest, f.stat().st_mtime)
    return newest


def ensure_manifest() -> Path:
    """Parse the dbt project when its manifest is missing or stale; return the manifest path."""
    ensure_venv_on_path()
    manifest = DBT_PROJECT.manifest_path
    if not manifest.exists() or manifest.stat().st_mtime < _newest_source_mtime(
        DBT_PROJECT.project_dir
    ):
        DBT_PROJECT.preparer.prepare(DBT_PROJECT)
    return manifest
