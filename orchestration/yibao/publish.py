"""Write-audit-publish of warehouse versions.

The pipeline writes the build database; users never open it. Publishing copies the
published schemas into a new, complete version file and then swaps one symlink,
``warehouse/live.duckdb``, with a rename: readers see the old version or the new
one, never a half-written one, and a reader holding the old file keeps reading it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from yibao.config import Settings, pause_for_crash_test

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

    def fill(con: duckdb.DuckDBPyConnection, version: str) -> int:
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
        _record_lineage(con, version, "full", _sequence(Path(version)))
        return len(tables)

    return _new_version(settings, fill)


def publish_results(settings: Settings) -> Published | None:
    """After a blocked run: the live figures again, with the build's data-quality results.

    A blocked run must not move any figure, but regulators must see why figures did not
    move: the new version is a copy of the live one whose `marts.dq_results` is the
    build's (every run's results, this one's included). None when nothing is live yet.
    """
    try:
        live = live_version_path(settings)
    except NothingPublished:
        return None
    figures_from = _lineage(live)[1]

    def fill(con: duckdb.DuckDBPyConnection, version: str) -> int:
        con.execute("attach $p as build (read_only)", {"p": str(settings.build_db)})
        has_results = con.execute(
            "select count(*) from duckdb_tables() where database_name = 'build' "
            "and schema_name = 'marts' and table_name = 'dq_results'"
        ).fetchone()[0]
        if has_results:
            con.execute("create or replace table marts.dq_results as from build.marts.dq_results")
        con.execute("detach build")
        _record_lineage(con, version, "results_only", figures_from)
        return con.execute(
            "select count(*) from duckdb_tables() where schema_name in ('marts', 'ops')"
        ).fetchone()[0]

    return _new_version(settings, fill, copy_of=live, suffix=f"-of-v{figures_from:06d}")


def rollback(settings: Settings) -> Published:
    """Make live the newest full version published before the live figures."""
    live = live_version_path(settings)
    current = _lineage(live)[1]
    older = [
        v
        for v in sorted(settings.versions_dir.glob("v*.duckdb"), key=_sequence)
        if _sequence(v) < current and _lineage(v)[0] == "full"
    ]
    if not older:
        raise NothingPublished("no earlier published version is kept to roll back to")
    target = older[-1]
    _point_live_at(settings, target)
    return Published(target.stem, target, 0)


def _new_version(
    settings: Settings, fill, copy_of: Path | None = None, suffix: str = ""
) -> Published:
    """A new version file, filled by `fill` under a temporary name, then made live."""
    settings.versions_dir.mkdir(parents=True, exist_ok=True)
    # A sequence number first: versions sort in publication order, whatever the clock says.
    version = f"v{_next_sequence(settings):06d}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}{suffix}"
    final = settings.versions_dir / f"{version}.duckdb"
    staging = final.with_suffix(".duckdb.part")
    if copy_of is not None:
        shutil.copyfile(copy_of, staging)
    con = duckdb.connect(str(staging), config=settings.duckdb_config())
    try:
        tables = fill(con, version)
        con.execute("checkpoint")
    finally:
        con.close()
    pause_for_crash_test("publish", settings.home)
    os.replace(staging, final)
    _fsync_dir(settings.versions_dir)
    _point_live_at(settings, final)
    _prune(settings, keep=final)
    return Published(version, final, tables)


def _record_lineage(con: duckdb.DuckDBPyConnection, version: str, kind: str, figures_from: int):
    # Which publication this version's figures come from: rollback skips copies.
    con.execute("create schema if not exists ops")
    con.execute(
        "create or replace table ops.publication as select "
        "$v as version, $k as kind, $f as figures_from, current_timestamp as published_at",
        {"v": version, "k": kind, "f": figures_from},
    )


def _lineage(path: Path) -> tuple[str, int]:
    """(kind, sequence of the full version its figures come from), read off the name:
    a copy is named `v<seq>-<time>-of-v<source seq>` (no file is opened: readers in this
    process may hold it with another configuration)."""
    _, sep, source = path.stem.partition("-of-v")
    if sep and source[:6].isdigit():
        return "results_only", int(source[:6])
    return "full", _sequence(path)


def _sequence(path: Path) -> int:
    return int(path.name[1:7]) if path.name[1:7].isdigit() else -1


def _next_sequence(settings: Settings) -> int:
    return max((_sequence(p) for p in settings.versions_dir.glob("v*.duckdb")), default=0) + 1


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
    """Keep the newest KEEP_VERSIONS full publications (what rollback can return to), the
    copies made after the oldest of them, and whatever is live; delete the rest."""
    versions = sorted(settings.versions_dir.glob("v*.duckdb"), key=_sequence)
    full = [v for v in versions if _lineage(v)[0] == "full"]
    oldest_kept = _sequence(full[-KEEP_VERSIONS]) if len(full) >= KEEP_VERSIONS else -1
    live = settings.live_db.resolve() if settings.live_db.exists() else None
    for old in versions:
        if _sequence(old) < oldest_kept and old not in (keep, live):
            old.unlink(missing_ok=True)
    for leftover in settings.versions_dir.glob("*.part"):
        leftover.unlink(missing_ok=True)  # from a publish that crashed
