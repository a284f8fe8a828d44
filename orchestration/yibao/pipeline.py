"""One pass of the pipeline as a real Dagster run: what `yibao run` and the benchmark call."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from yibao.config import Settings


class PipelineBusy(RuntimeError):
    """Another run holds this home's build database."""


def write_dagster_yaml(settings: Settings) -> None:
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    config = settings.dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(
            "# Written by yibao: a persistent instance under the home folder.\n"
            "telemetry:\n  enabled: false\n"
        )


class RunLock:
    """One run per home at a time: the build database has one writer.

    Re-entrant within a process: `yibao run` takes it, then the job it runs takes it
    again (as runs launched by the Dagster daemon must) without blocking itself.
    """

    _held: dict[Path, int] = {}  # lock path -> depth, in this process

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        self.fh = None

    def __enter__(self) -> RunLock:
        if RunLock._held.get(self.path):
            RunLock._held[self.path] += 1
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = self.path.open("a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self.fh.seek(0)
            holder = self.fh.read().strip() or "unknown"
            self.fh.close()
            raise PipelineBusy(
                f"another `yibao run` is in progress in this home (pid {holder})"
            ) from exc
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(str(os.getpid()))
        self.fh.flush()
        RunLock._held[self.path] = 1
        return self

    def __exit__(self, *exc: object) -> None:
        RunLock._held[self.path] -= 1
        if RunLock._held[self.path]:
            return  # an outer holder in this process keeps it
        del RunLock._held[self.path]
        assert self.fh is not None
        self.fh.seek(0)
        self.fh.truncate()  # an empty lock file: nobody holds it
        self.fh.close()  # closing releases the lock


@dataclass
class PipelineRun:
    result: Any  # dagster ExecuteInProcessResult
    seconds: float
    log_path: Path
    step_seconds: dict[str, float] = field(default_factory=dict)


def _step_seconds(instance, run_id: str) -> dict[str, float]:
    """Wall time of each step, from the run's own event log."""
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or not event.step_key:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            seconds[event.step_key] = entry.timestamp - started.get(event.step_key, entry.timestamp)
    return seconds


def run_pipeline(settings: Settings, announce=print, full_refresh: bool = False) -> PipelineRun:
    """Ingest, build, validate and publish under the run lock; never raises on a failed step.

    full_refresh: rebuild the incremental models from scratch, not only new months."""
    settings.export_env()
    write_dagster_yaml(settings)
    with RunLock(settings.run_lock):
        from dagster import DagsterInstance

        from yibao.definitions import defs

        started = time.monotonic()
        job = defs.resolve_job_def("yibao_run")
        settings.logs.mkdir(parents=True, exist_ok=True)
        log_path = settings.logs / f"run-{datetime.now():%Y%m%dT%H%M%S%f}.log"
        announce(f"running ingest → dbt → checks → publish (log: {log_path})")
        # dbt's own lines go to the run log (and the Dagster UI), not the operator's terminal.
        with DagsterInstance.get() as instance, log_path.open("w") as log:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                result = job.execute_in_process(
                    instance=instance,
                    raise_on_error=False,
                    run_config={
                        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
                        "ops": {"warehouse_models": {"config": {"full_refresh": full_refresh}}},
                    },
                )
            steps = _step_seconds(instance, result.run_id)
        return PipelineRun(result, time.monotonic() - started, log_path, steps)
