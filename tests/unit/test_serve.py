import json
import os
import socket

import pytest

from yibao.config import Settings
from yibao.serve import Endpoints, _port_free, running, state_file


def test_endpoints_from_environment(monkeypatch):
    monkeypatch.setenv("YIBAO_SUPERSET_PORT", "18088")
    monkeypatch.delenv("YIBAO_DAGSTER_PORT", raising=False)
    e = Endpoints.from_env()
    assert e.superset_url == "http://127.0.0.1:18088" and e.dagster_port == 3000


def test_running_ignores_stale_state(home):
    settings = Settings(home=home)
    state_file(settings).parent.mkdir(parents=True)
    state_file(settings).write_text(json.dumps({"pid": 2**22 + 12345}))  # no such process
    assert running(settings) is None
    state_file(settings).write_text(json.dumps({"pid": os.getpid(), "superset_url": "x"}))
    assert running(settings)["superset_url"] == "x"
    state_file(settings).write_text("{not json")
    assert running(settings) is None


def test_busy_port_is_detected():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not _port_free("127.0.0.1", port)


@pytest.mark.parametrize("name", ["secret_key", "admin_password"])
def test_superset_secrets_are_generated_once_and_private(home, monkeypatch, name):
    from yibao.superset.setup import admin_password, write_config

    monkeypatch.delenv("SUPERSET_ADMIN_PASSWORD", raising=False)
    settings = Settings(home=home)
    write_config(settings)
    first, source = admin_password(settings)
    assert source.endswith("admin_password") and admin_password(settings)[0] == first
    path = home / "superset" / name
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    monkeypatch.setenv("SUPERSET_ADMIN_PASSWORD", "from-env-123")
    assert admin_password(settings) == (
        "from-env-123",
        "the SUPERSET_ADMIN_PASSWORD environment variable",
    )
