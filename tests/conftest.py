"""Shared fixtures: every test gets its own home folder; nothing reads ../shared."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent
YIBAO = str(VENV_BIN / "yibao")

# The longest test files first, longest first (seconds of work each in a clean-clone CI
# on 2026-12-03: 384, 364, 333, 201, 177, 121, 90; every other file under 50). With
# `--dist loadfile` a worker takes the next file when it runs short, and xdist's default
# order (most tests first) put the two longest single-test files last: one worker sat
# idle for ~150 s of a 1,017 s suite. The Makefile turns that reordering off.
LONGEST_FIRST = (
    "integration/test_pipeline.py",
    "browser/test_dashboard.py",
    "integration/test_wap.py",
    "integration/test_incremental.py",
    "integration/test_bench.py",
    "integration/test_ingest.py",
    "integration/test_rules.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return next(
            (i for i, name in enumerate(LONGEST_FIRST) if path.endswith(name)),
            len(LONGEST_FIRST),
        )

    items.sort(key=rank)  # stable: the order within a file is kept


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def run_yibao(home: Path, *args: str, check: bool = True, timeout: float = 600):
    """The real command line, as an operator or a scheduled job calls it."""
    env = {**os.environ, "YIBAO_HOME": str(home)}
    proc = subprocess.run([YIBAO, *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"yibao {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc
