"""Dashboards as code: the Superset export bundle kept in `dashboards/`.

The bundle names the warehouse as ``{{ YIBAO_LIVE_WAREHOUSE }}``; at import the
placeholder becomes this home's live symlink, never a path from someone's machine.
Superset's dashboard import does not overwrite the database, datasets or charts
it depends on, so each layer is imported on its own, with overwrite: a change to
any file in `dashboards/` reaches a running Superset.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from yibao.config import REPO_ROOT, Settings

# The bundle in the repository; YIBAO_DASHBOARDS_DIR points elsewhere (tests, a fork's own).
DASHBOARDS_DIR = Path(os.environ.get("YIBAO_DASHBOARDS_DIR", REPO_ROOT / "dashboards"))
PLACEHOLDER = "{{ YIBAO_LIVE_WAREHOUSE }}"
_ROOT = "yibao_bundle"
# Superset's import endpoints, in dependency order, with the model each one expects.
LAYERS = [
    ("database", "Database", ("databases/",)),
    ("dataset", "SqlaTable", ("databases/", "datasets/")),
    ("chart", "Slice", ("databases/", "datasets/", "charts/")),
    ("dashboard", "Dashboard", ("databases/", "datasets/", "charts/", "dashboards/")),
]
_BUNDLE_DIRS = ("databases", "datasets", "charts", "dashboards")


def warehouse_uri(settings: Settings) -> str:
    # NullPool in Superset: every query opens the symlink anew, so a new publication shows.
    return f"duckdb:///{settings.live_db}?access_mode=read_only"


def bundle_files(source: Path = DASHBOARDS_DIR) -> dict[str, str]:
    files = {}
    for sub in _BUNDLE_DIRS:
        for path in sorted((source / sub).rglob("*.yaml")):
            files[path.relative_to(source).as_posix()] = path.read_text("utf-8")
    if not files:
        raise FileNotFoundError(f"no dashboard bundle under {source}")
    return files


def layer_zip(files: dict[str, str], settings: Settings, model: str, prefixes) -> bytes:
    """One import bundle: the files of the given layers, the warehouse path filled in."""
    buffer = io.BytesIO()
    stamp = datetime.now(UTC).isoformat()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            f"{_ROOT}/metadata.yaml", f"version: 1.0.0\ntype: {model}\ntimestamp: '{stamp}'\n"
        )
        for name, text in files.items():
            if name.startswith(tuple(prefixes)):
                text = text.replace(
                    f"duckdb:///{PLACEHOLDER}", warehouse_uri(settings).split("?")[0]
                )
                zf.writestr(f"{_ROOT}/{name}", text)
    return buffer.getvalue()


def import_bundle(client, settings: Settings, source: Path = DASHBOARDS_DIR) -> None:
    files = bundle_files(source)
    for resource, model, prefixes in LAYERS:
        response = client.request(
            "POST",
            f"/api/v1/{resource}/import/",
            files={"formData": ("bundle.zip", layer_zip(files, settings, model, prefixes))},
            data={"overwrite": "true"},
        )
        if response.status_code != 200:
            raise RuntimeError(
                f"importing the {resource}s of {source} failed: "
                f"HTTP {response.status_code}: {response.text[:300]}"
            )


def readable_yaml(text: str) -> str:
    """Superset escapes Chinese as \\uXXXX; reviewers should read 参保率, not codes."""
    import yaml

    return yaml.safe_dump(yaml.safe_load(text), allow_unicode=True, sort_keys=False, width=100)


def export_bundle(client, settings: Settings, target: Path = DASHBOARDS_DIR) -> list[str]:
    """Write every dashboard as edited in Superset back into `target` as reviewable YAML."""
    ids = [d["id"] for d in client.list_ids("dashboard")]
    if not ids:
        raise RuntimeError("Superset has no dashboards to export")
    archive = zipfile.ZipFile(io.BytesIO(client.export_dashboards(ids)))
    live_uri = warehouse_uri(settings).split("?")[0]
    written = []
    staged = target.with_name(target.name + ".export-tmp")
    shutil.rmtree(staged, ignore_errors=True)
    for member in archive.namelist():
        parts = member.split("/", 1)
        if len(parts) < 2 or not parts[1].endswith(".yaml") or parts[1] == "metadata.yaml":
            continue
        # Superset suffixes file names with this instance's ids: drop them for stable diffs.
        rel = re.sub(r"_\d+\.yaml$", ".yaml", parts[1])
        text = archive.read(member).decode("utf-8").replace(live_uri, f"duckdb:///{PLACEHOLDER}")
        out = staged / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(readable_yaml(text), "utf-8")
        written.append(rel)
    for sub in _BUNDLE_DIRS:  # replace the bundle, keep anything else (README)
        shutil.rmtree(target / sub, ignore_errors=True)
        if (staged / sub).exists():
            shutil.move(str(staged / sub), str(target / sub))
    shutil.rmtree(staged, ignore_errors=True)
    return sorted(written)
