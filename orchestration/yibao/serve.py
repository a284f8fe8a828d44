"""`yibao serve`: the Dagster UI (webserver and daemon), Superset and the dbt docs site,
kept up until stopped.

Each server runs in its own process group with its PID under ``<home>/run``; the
supervisor stops them by those PIDs (never by name) on Ctrl-C or SIGTERM, and
stops everything if one of them dies. A second `serve` finds the first through
``<home>/run/serve.json`` and reports it instead of colliding on ports.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from yibao.config import Settings

STOP_GRACE_S = 20  # seconds a server gets to stop after SIGTERM before SIGKILL


@dataclass(frozen=True)
class Endpoints:
    bind: str
    dagster_port: int
    superset_port: int
    docs_port: int = 8089

    @classmethod
    def from_env(cls) -> Endpoints:
        return cls(
            bind=os.environ.get("YIBAO_BIND", "127.0.0.1"),
            dagster_port=int(os.environ.get("YIBAO_DAGSTER_PORT", "3000")),
            superset_port=int(os.environ.get("YIBAO_SUPERSET_PORT", "8088")),
            docs_port=int(os.environ.get("YIBAO_DOCS_PORT", "8089")),
        )

    @property
    def dagster_url(self) -> str:
        return f"http://{self.bind}:{self.dagster_port}"

    @property
    def superset_url(self) -> str:
        return f"http://{self.bind}:{self.superset_port}"

    @property
    def docs_url(self) -> str:
        return f"http://{self.bind}:{self.docs_port}/static_index.html"

    @property
    def quality_url(self) -> str:
        return f"http://{self.bind}:{self.docs_port}/quality/index.html"


def run_dir(settings: Settings) -> Path:
    return settings.home / "run"


def state_file(settings: Settings) -> Path:
    return run_dir(settings) / "serve.json"


def docs_dir(settings: Settings) -> Path:
    return settings.home / "dbt" / "docs"


def build_dbt_docs(settings: Settings) -> Path:
    """The dbt docs site, one self-contained page (every relation and column, English and
    中文), from the parsed project alone: the build database is not opened, so a run in
    progress is neither blocked nor blocking."""
    from yibao.dbt import DBT_PROJECT, ensure_manifest

    out = docs_dir(settings)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ensure_manifest(), out / "manifest.json")
    project = str(DBT_PROJECT.project_dir)
    cmd = [
        str(Path(sys.executable).parent / "dbt"), "docs", "generate", "--static",
        "--empty-catalog", "--no-compile", "--target-path", str(out),
        "--project-dir", project, "--profiles-dir", project,
    ]  # fmt: skip
    with (settings.logs / "dbt-docs-generate.log").open("w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=project)
    # Great Expectations' Data Docs (rebuilt by every run's checks) served beside it.
    from yibao.validate import quality_site

    site = quality_site(settings.quality)
    site.mkdir(parents=True, exist_ok=True)
    link = out / "quality"
    if not link.is_symlink():
        link.symlink_to(site, target_is_directory=True)
    return out / "static_index.html"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(settings: Settings) -> dict | None:
    """The state of a live `yibao serve` in this home, else None."""
    path = state_file(settings)
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if _alive(int(state.get("pid", 0))) else None


def _port_free(bind: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind, port))
        except OSError:
            return False
    return True


class Supervisor:
    def __init__(self, settings: Settings, endpoints: Endpoints) -> None:
        self.settings = settings
        self.endpoints = endpoints
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = False

    # -- processes -------------------------------------------------------------
    def _bin(self, name: str) -> str:
        return str(Path(sys.executable).parent / name)

    def commands(self) -> dict[str, list[str]]:
        e = self.endpoints
        return {
            "dagster-webserver": [
                self._bin("dagster-webserver"),
                "-h", e.bind, "-p", str(e.dagster_port), "-m", "yibao.definitions",
            ],
            "dagster-daemon": [self._bin("dagster-daemon"), "run", "-m", "yibao.definitions"],
            "superset": [
                self._bin("gunicorn"),
                "--bind", f"{e.bind}:{e.superset_port}",
                "--workers", "1", "--worker-class", "gthread", "--threads", "8",
                "--timeout", "120", "--limit-request-line", "0",
                "superset.app:create_app()",
            ],
            "dbt-docs": [
                sys.executable, "-m", "http.server", str(e.docs_port), "--bind", e.bind,
                "--directory", str(docs_dir(self.settings)),
            ],
        }  # fmt: skip

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        log = self.settings.logs / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                cmd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped by PID, as a whole
            )
        self.children[name] = proc
        (run_dir(self.settings) / f"{name}.pid").write_text(str(proc.pid))

    def stop(self) -> None:
        for proc in self.children.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in self.children.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        for name in self.children:
            (run_dir(self.settings) / f"{name}.pid").unlink(missing_ok=True)
        state_file(self.settings).unlink(missing_ok=True)

    def stop_leftovers(self) -> None:
        """Servers a killed supervisor left behind: ours by their PID files, nothing else."""
        for name in self.commands():
            pid_file = run_dir(self.settings) / f"{name}.pid"
            if not pid_file.exists():
                continue
            pid = int(pid_file.read_text().strip() or 0)
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                cmdline = ""
            expected = {"superset": "gunicorn", "dbt-docs": "http.server"}.get(name, name)
            if pid and expected in cmdline:  # the PID was not reused by something else
                try:
                    os.killpg(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            pid_file.unlink(missing_ok=True)

    def check_children(self) -> str | None:
        for name, proc in self.children.items():
            code = proc.poll()
            if code is not None:
                log = self.settings.logs / f"{name}.log"
                return f"{name} stopped unexpectedly (exit {code}); see {log}"
        return None


def wait_http(url: str, supervisor: Supervisor, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        problem = supervisor.check_children()
        if problem:
            raise RuntimeError(problem)
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


def serve(settings: Settings, endpoints: Endpoints, *, once: bool = False) -> int:
    """Start everything, print where it is, and keep it up until interrupted."""
    from yibao.superset.api import SupersetClient
    from yibao.superset.bundle import import_bundle
    from yibao.superset.setup import ADMIN_USERNAME, admin_password, bootstrap, superset_env

    run_dir(settings).mkdir(parents=True, exist_ok=True)
    settings.logs.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(settings, endpoints)
    supervisor.stop_leftovers()
    for what, port in (
        ("Dagster", endpoints.dagster_port),
        ("Superset", endpoints.superset_port),
        ("Docs", endpoints.docs_port),
    ):
        if not _port_free(endpoints.bind, port):
            raise RuntimeError(
                f"port {port} for {what} is in use by another program "
                f"(set YIBAO_{what.upper()}_PORT to choose another)"
            )

    def _on_signal(signum, frame):  # noqa: ARG001
        supervisor.stopping = True

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    build_dbt_docs(settings)
    print("setting up Superset (first start takes about a minute)...", flush=True)
    bootstrap(settings)
    password, password_source = admin_password(settings)
    env = superset_env(settings)
    state = {
        "pid": os.getpid(),
        "dagster_url": endpoints.dagster_url,
        "superset_url": endpoints.superset_url,
        "docs_url": endpoints.docs_url,
        "quality_url": endpoints.quality_url,
        "admin_password": password_source,
    }
    try:
        for name, cmd in supervisor.commands().items():
            supervisor.start(name, cmd, env)
        state_file(settings).write_text(json.dumps(state, indent=2))
        wait_http(f"{endpoints.superset_url}/health", supervisor, timeout=180)
        client = SupersetClient(endpoints.superset_url, ADMIN_USERNAME, password)
        import_bundle(client, settings)
        from yibao.superset.users import refresh_row_level_security

        refresh_row_level_security(settings)  # provincial roles filter the datasets just imported
        wait_http(f"{endpoints.dagster_url}/server_info", supervisor, timeout=180)
        wait_http(endpoints.docs_url, supervisor, timeout=30)
        print(describe(state), flush=True)
        while not supervisor.stopping and not once:
            problem = supervisor.check_children()
            if problem:
                raise RuntimeError(problem)
            time.sleep(0.5)
    finally:
        supervisor.stop()
    print("stopped Dagster, Superset and the dbt docs", flush=True)
    return 0


def describe(state: dict) -> str:
    return (
        f"Dagster UI:  {state['dagster_url']}\n"
        f"Superset:    {state['superset_url']}/superset/dashboard/overview/ "
        f"(user admin, password in {state['admin_password']})\n"
        f"dbt docs:    {state.get('docs_url', '-')}\n"
        f"Data Docs:   {state.get('quality_url', '-')} (Great Expectations results)\n"
        f"stop with Ctrl-C, or: kill {state['pid']}"
    )
