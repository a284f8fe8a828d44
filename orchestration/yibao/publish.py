"""Write-audit-publish of warehouse versions.

The pipeline writes the build database; users never open it. Publishing copies the
published schemas into a new, complete version file and then swaps one symlink,
``warehouse/live.duckdb``, with a rename: readers see the old version or the new
one, never a half-written one, and a reader holding the old file keeps reading it.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from yibao.config import Settings

# The schemas users rely on (warehouse contract); staging and raw stay internal.
PUBLISHED_SCHEMAS = ("marts", "ops")
# Versions kept on disk for rollback; older ones are deleted after a publish.
KEEP_VERSIONS = 5


class NothingPublished(Exception):
    """No version has been published in this home yet."""


@dataclass(frozen=True)
class Published:
    version: str
    path: Path
    tables: int


def live_version_path(settings: Settings) -> Path:
    """The file the live symlink points to, resolved once (a reader keeps this file)."""
    live = settings.live_db
    if not live.is_symlink() and not live.exists():
        raise NothingPublished(f"no published warehouse in {settings.home}: run `yibao run` first")
    return live.resolve(strict=True)


def connect_live(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the live version, never to the build database."""
    path = live_version_path(settings)
    return duckdb.connect(str(path), read_only=True, config=settings.duckdb_config())


def publish(settings: Settings) -> Published:
    """Copy the published schemas of the build database into a new version and make it live."""
    settings.versions_dir.mkdir(parents=True, exist_ok=True)
    # A sequence number first: versions sort in publication order, whatever the clock says.
    version = f"v{_next_sequence(settings):06d}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    final = settings.versions_dir / f"{version}.duckdb"
    staging = final.with_suffix(".duckdb.part")

    con = duckdb.connect(str(staging), config=settings.duckdb_config())
    try:
        con.execute("attach $p as build (read_only)", {"p": str(settings.build_db)})
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where database_name = 'build' and schema_name in "
            f"({', '.join(repr(s) for s in PUBLISHED_SCHEMAS)}) order by all"
        ).fetchall()
        if not tables:
            raise RuntimeError("the build database has no published relations to publish")
        for schema in {s for s, _ in tables}:
            con.execute(f'create schema "{schema}"')
        for schema, table in tables:
            con.execute(f'create table "{schema}"."{table}" as from build."{schema}"."{table}"')
        con.execute("detach build")
        con.execute("checkpoint")
    finally:
        con.close()
    os.replace(staging, final)
    _fsync_dir(settings.versions_dir)
    _point_live_at(settings, final)
    _prune(settings, keep=final)
    return Published(version, final, len(tables))


def _next_sequence(settings: Settings) -> int:
    numbers = [
        int(p.name[1:7]) for p in settings.versions_dir.glob("v*.duckdb") if p.name[1:7].isdigit()
    ]
    return max(numbers, default=0) + 1


def _point_live_at(settings: Settings, target: Path) -> None:
    link = settings.live_db
    tmp = link.with_name(f".live-{uuid.uuid4().hex[:8]}")
    os.symlink(os.path.relpath(target, link.parent), tmp)
    os.replace(tmp, link)  # atomic on POSIX: the live version changes in one step
    _fsync_dir(link.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prune(settings: Settings, keep: Path) -> None:
    versions = sorted(settings.versions_dir.glob("*.duckdb"))
    for old in versions[:-KEEP_VERSIONS]:
        if old != keep:
            old.unlink(missing_ok=True)
    for leftover in settings.versions_dir.glob("*.part"):
        leftover.unlink(missing_ok=True)  # from a publish that crashed
