"""Shared fixtures: every test gets its own home folder; nothing reads ../shared."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent
YIBAO = str(VENV_BIN / "yibao")


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
