"""Superset set up by the project: configuration, secrets, metadata database, admin.

Everything lives under ``<home>/superset``. Secrets are generated once into 0600
files (never a default password); a second start reuses them, and the slow steps
(`db upgrade`, `init`) run again only when Superset or our configuration changes.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
from pathlib import Path

from yibao.config import Settings

ADMIN_USERNAME = "admin"

CONFIG_TEMPLATE = '''\
"""Superset configuration written by `yibao serve`: edit Yibao, not this file."""

import os
from pathlib import Path

_HOME = Path(__file__).resolve().parent

SECRET_KEY = (_HOME / "secret_key").read_text().strip()
# SQLite metadata by default; PostgreSQL (or any SQLAlchemy URI) from the environment.
SQLALCHEMY_DATABASE_URI = os.environ.get("YIBAO_SUPERSET_DATABASE_URI") or (
    "sqlite:///" + str(_HOME / "superset.db")
)
DATA_DIR = str(_HOME / "data")

# Nothing leaves the bureau's network: no telemetry, and a Content-Security-Policy
# that stops the front end's tracking pixel (stack-notes).
SCARF_ANALYTICS = False
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'", "data:"],
        "script-src": ["'self'", "'strict-dynamic'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,
    "session_cookie_secure": False,
}

BABEL_DEFAULT_LOCALE = os.environ.get("YIBAO_SUPERSET_LOCALE", "en")
LANGUAGES = {
    "en": {"flag": "us", "name": "English"},
    "zh": {"flag": "cn", "name": "Chinese"},
}

# Figures change when a new version is published: never serve cached chart data.
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
RATELIMIT_STORAGE_URI = "memory://"
SQLLAB_CTAS_NO_LIMIT = False
ROW_LIMIT = 50000
'''


def superset_dir(settings: Settings) -> Path:
    return settings.home / "superset"


def _secret_file(path: Path, make) -> str:
    """Read a secret, creating it 0600 on first use (O_EXCL: one writer wins)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(make())
    return path.read_text().strip()


def admin_password(settings: Settings) -> tuple[str, str]:
    """The admin password and where it comes from (env var or the 0600 file)."""
    from_env = os.environ.get("SUPERSET_ADMIN_PASSWORD")
    if from_env:
        return from_env, "the SUPERSET_ADMIN_PASSWORD environment variable"
    path = superset_dir(settings) / "admin_password"
    return _secret_file(path, lambda: secrets.token_urlsafe(18)), str(path)


def superset_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["SUPERSET_CONFIG_PATH"] = str(superset_dir(settings) / "superset_config.py")
    env["FLASK_APP"] = "superset.app:create_app()"
    env["SUPERSET_HOME"] = str(superset_dir(settings))
    env["SCARF_ANALYTICS"] = "false"
    return env


def write_config(settings: Settings) -> Path:
    home = superset_dir(settings)
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    _secret_file(home / "secret_key", lambda: secrets.token_urlsafe(42))
    config = home / "superset_config.py"
    if not config.exists() or config.read_text() != CONFIG_TEMPLATE:
        config.write_text(CONFIG_TEMPLATE)
    return config


ADMIN_SCRIPT = """
import os
from superset.app import create_app

app = create_app()
with app.app_context():
    from superset.extensions import security_manager as sm

    password = os.environ["YIBAO_ADMIN_PASSWORD"]
    username = os.environ["YIBAO_ADMIN_USERNAME"]
    user = sm.find_user(username=username)
    if user is None:
        sm.add_user(username, "Yibao", "Admin", "admin@yibao.invalid", sm.find_role("Admin"),
                    password=password)
    else:
        sm.reset_password(user.id, password)
"""


def _run_python(settings: Settings, script: str, extra_env: dict[str, str], log: Path) -> None:
    env = {**superset_env(settings), **extra_env}
    with log.open("a") as out:
        proc = subprocess.run([sys.executable, "-c", script], env=env, stdout=out, stderr=out)
    if proc.returncode != 0:
        raise RuntimeError(f"a Superset set-up step failed (exit {proc.returncode}); see {log}")


def _superset(settings: Settings, *args: str, log: Path) -> None:
    cmd = [str(Path(sys.executable).parent / "superset"), *args]
    with log.open("a") as out:
        out.write(f"$ superset {' '.join(args)}\n")
        out.flush()
        proc = subprocess.run(cmd, env=superset_env(settings), stdout=out, stderr=out)
    if proc.returncode != 0:
        raise RuntimeError(f"`superset {args[0]}` failed (exit {proc.returncode}); see {log}")


def bootstrap(settings: Settings) -> None:
    """Metadata schema, roles and the admin user; quick when nothing changed."""
    from importlib.metadata import version

    write_config(settings)
    password, _ = admin_password(settings)
    home = superset_dir(settings)
    log = settings.logs / "superset-setup.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    fingerprint = hashlib.sha256(
        "\n".join(
            [
                version("apache-superset"),
                CONFIG_TEMPLATE,
                os.environ.get("YIBAO_SUPERSET_DATABASE_URI", ""),
                hashlib.sha256(password.encode()).hexdigest(),
            ]
        ).encode()
    ).hexdigest()
    stamp = home / ".bootstrapped"
    if stamp.exists() and stamp.read_text() == fingerprint:
        return
    _superset(settings, "db", "upgrade", log=log)
    _superset(settings, "init", log=log)
    # The password travels in the child's environment, never on a command line (ps).
    _run_python(
        settings,
        ADMIN_SCRIPT,
        {"YIBAO_ADMIN_PASSWORD": password, "YIBAO_ADMIN_USERNAME": ADMIN_USERNAME},
        log=log,
    )
    stamp.write_text(fingerprint)
