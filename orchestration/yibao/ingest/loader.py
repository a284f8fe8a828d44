"""Landing → raw: every file recorded, every record loaded or quarantined with a reason.

A batch is identified by its path under ``landing/``. The same bytes seen again
change nothing; new bytes under the same path replace exactly that batch's rows,
in one transaction. DuckDB does the reading, checking and casting in SQL, and it
reads new batches of a feed that share a header and format together, up to 512 MB a
statement: per-file statements cost ~40 ms each, which made ingestion 10× a bare scan,
and one statement for 3.5 GB spilled past the memory limit. A group that fails as a
whole is retried file by file, so one bad file never stops the rest.

A file is hashed again only when its size, times or inode changed since it was
hashed (`ops.landed_files`): a run with nothing new read every landed byte before,
so its cost grew with the history kept, not with what arrived.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import re
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from yibao.ingest.feeds import DUCKDB_TYPES, FEEDS, Feed
from yibao.ingest.pseudonym import PSEUDONYM_TYPE, key_id, pseudonym_from_hex_sql, pseudonym_sql

_LAYOUT = re.compile(
    r"^(?P<feed>[a-z_]+)/period=(?P<period>\d{4}-\d{2})/admdvs=(?P<admdvs>\d{6})/"
    r"(?P<batch>[^/]+)\.(?P<ext>csv|csv\.gz|parquet)$"
)
_CHUNK = 1 << 20  # bytes per read when hashing and sniffing encodings
_SCAN_THREADS = 2  # files hashed and checked for their encoding at once
_IN_MEMORY = 8 << 20  # a file up to this size is read once: its chunks kept from the hash
_GROUP_BYTES = 512 << 20  # landed bytes read by one statement at most
_MASK = "'***'"  # what personal fields look like in the quarantine
PROBLEMS_PER_BATCH = 5  # quarantined records named in the run's log; all are in ops.quarantine
# A file whose last change is this recent when it is hashed is hashed again next time,
# whatever its times then say: a rewrite within one tick of the file system's clock may
# leave them as they were (git's "racily clean" entries).
_SETTLED_NS = 2_000_000_000
# A file's state in ops.landed_files after its path, in the order `ingest` keeps it.
_LANDED = ("size", "mtime_ns", "ctime_ns", "inode", "looked_at_ns", "checksum")

LEDGER_DDL = """
create schema if not exists ops;
create schema if not exists raw;
create table if not exists ops.batches (
    path varchar primary key,
    checksum varchar not null,
    feed varchar,
    period date,
    admdvs varchar,
    encoding varchar,
    rows_read bigint not null,
    rows_loaded bigint not null,
    rows_quarantined bigint not null,
    outcome varchar not null,
    reason varchar,
    extra_columns varchar[],
    received_at timestamp,
    processed_at timestamp not null
);
-- What each landed file looked like on disk when it was last hashed: one unchanged
-- since (size, modification and change times, inode) is not read again.
create table if not exists ops.landed_files (
    path varchar primary key,
    size bigint not null,
    mtime_ns bigint not null,
    ctime_ns bigint not null,
    inode ubigint not null,
    looked_at_ns bigint not null,
    checksum varchar not null
);
-- Which key the pseudonyms were made with, by its id (never the key itself): one row.
create table if not exists ops.pseudonym_key (
    key_id varchar not null,
    first_used_at timestamp not null
);
create table if not exists ops.quarantine (
    path varchar not null,
    line_no bigint not null,
    reason_code varchar not null,
    reason varchar not null,
    record json
);
"""


class PseudonymKeyChanged(Exception):
    """The key given is not the one the warehouse's pseudonyms were made with."""


class BatchRejected(Exception):
    """The whole batch cannot be read as its feed: recorded with this reason."""


@dataclass
class BatchResult:
    path: str
    outcome: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    reason: str | None = None
    # The first quarantined records, one line each: "path:line: reason_code: reason".
    problems: list[str] = field(default_factory=list)


@dataclass
class IngestReport:
    batches: list[BatchResult] = field(default_factory=list)
    skipped: int = 0
    # Where the time went: reading the files (hashes, encodings), then each feed's loads.
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def rejected(self) -> list[BatchResult]:
        return [b for b in self.batches if b.outcome == "rejected"]

    def summary(self) -> str:
        loaded = sum(b.rows_loaded for b in self.batches)
        quarantined = sum(b.rows_quarantined for b in self.batches)
        return (
            f"{len(self.batches)} batch(es) processed, {self.skipped} unchanged; "
            f"{loaded} rows loaded, {quarantined} quarantined, {len(self.rejected)} rejected"
        )


def raw_table_ddl(feed: Feed) -> str:
    cols = []
    for f in feed.fields:
        if f.name in feed.drop:
            continue
        if f.name in feed.pseudonymise:
            cols.append(f"{f.name}_hmac {PSEUDONYM_TYPE}")
        else:
            cols.append(f"{f.name} {DUCKDB_TYPES[f.type]}")
    cols += ["_extra json", "_batch_path varchar not null", "_line_no bigint not null"]
    return f"create table if not exists raw.{feed.name} (\n    " + ",\n    ".join(cols) + "\n)"


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(LEDGER_DDL)
    for feed in FEEDS.values():
        con.execute(raw_table_ddl(feed))
    _migrate_text_pseudonyms(con)


def check_key(con: duckdb.DuckDBPyConnection, key: bytes) -> None:
    """Refuse to load under a key other than the one the raw layer's pseudonyms were made
    with: every person would get a second pseudonym, counted twice in coverage and never
    found as a duplicate enrollment, and nothing would say so (a daemon started with
    YIBAO_PSEUDONYM_KEY and a cron job without it, or a lost secrets folder). The first
    load records the key's id; while no pseudonym is held yet, a new key takes its place."""
    given = key_id(key)
    row = con.execute("select key_id, first_used_at from ops.pseudonym_key").fetchone()
    if row is not None and row[0] == given:
        return
    if row is not None:
        held = [
            feed.name
            for feed in FEEDS.values()
            if feed.pseudonymise
            and con.execute(f"select count(*) from (from raw.{feed.name} limit 1)").fetchone()[0]
        ]
        if held:
            raise PseudonymKeyChanged(
                f"the pseudonym key (id {given}) is not the one this warehouse's persons "
                f"were pseudonymised with (id {row[0]}, since {row[1]:%Y-%m-%d %H:%M}; "
                f"raw {', '.join(held)}): loading would give every person a second "
                "pseudonym. Restore that key (YIBAO_PSEUDONYM_KEY or "
                "<home>/secrets/pseudonym.key), or rotate it by rebuilding from landing "
                "(README, Rotating the pseudonym key); nothing was loaded"
            )
    con.execute("begin transaction")
    try:
        con.execute("delete from ops.pseudonym_key")
        con.execute("insert into ops.pseudonym_key values ($k, now()::timestamp)", {"k": given})
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _migrate_text_pseudonyms(con: duckdb.DuckDBPyConnection) -> None:
    """A warehouse built when pseudonyms were hex text: convert the raw columns in place
    (the same value the loader now computes, so nothing is read again) and drop what dbt
    built on person keys as text (the models holding `person_key`, the rule hits keyed
    'p|<person_key>' and their state), so that the next build makes them in full once.
    One transaction: a crash leaves the warehouse as it was."""
    text = con.execute(
        "select table_name, column_name from information_schema.columns "
        "where table_schema = 'raw' and column_name like '%\\_hmac' escape '\\' "
        "and data_type = 'VARCHAR'"
    ).fetchall()
    if not text:
        return
    derived = con.execute(
        "select distinct table_schema, table_name, table_type from information_schema.columns "
        "join information_schema.tables using (table_catalog, table_schema, table_name) "
        "where table_schema not in ('raw', 'ops') and table_catalog = current_database() "
        "and ((column_name = 'person_key' and data_type = 'VARCHAR') "
        "or table_name like 'int\\_rule\\_hits%' escape '\\')"
    ).fetchall()
    con.execute("begin transaction")
    try:
        for table, column in text:
            con.execute(
                f"alter table raw.{_quote(table)} alter column {_quote(column)} "
                f"set data type {PSEUDONYM_TYPE} using {pseudonym_from_hex_sql(_quote(column))}"
            )
        for schema, table, kind in derived:
            what = "view" if kind == "VIEW" else "table"
            con.execute(f"drop {what} if exists {_quote(schema)}.{_quote(table)}")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def file_checksum(path: Path, keep: bool = False) -> tuple[str, list[bytes] | None]:
    """The file's SHA-256 and, if `keep`, the chunks it was read in (for the encoding
    check and the header, should the file be new: a second read cost a fifth of the
    files' time at `medium`; checking every file while hashing would cost re-runs)."""
    digest = hashlib.sha256()
    chunks: list[bytes] | None = [] if keep else None
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            if chunks is not None:
                chunks.append(chunk)
    return digest.hexdigest(), chunks


def _open_text_bytes(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")


def _is_utf8(data: bytes | memoryview) -> bool:
    """Arrow's UTF-8 validation: three times Python's decoder, and it releases the GIL."""
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    try:
        pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(data)]).validate(
            full=True
        )
    except pa.ArrowInvalid:
        return False
    return True


def _incomplete_tail(chunk: bytes) -> int:
    """Where the last character of `chunk` starts if it may continue in the next chunk."""
    end = len(chunk)
    i = end - 1
    while i >= 0 and end - i <= 3 and chunk[i] & 0xC0 == 0x80:  # continuation bytes
        i -= 1
    return i if i >= 0 and chunk[i] >= 0xC0 else end


def _chunks(path: Path) -> Iterator[bytes]:
    with _open_text_bytes(path) as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def detect_encoding(path: Path, chunks: list[bytes] | None = None) -> str:
    """'utf-8' if the whole file (in hand as `chunks`, or read from `path`) is valid
    UTF-8, else 'gb18030' (the file does not say)."""
    if chunks is not None:  # at most _IN_MEMORY bytes: one copy, one check
        return "utf-8" if _is_utf8(b"".join(chunks)) else "gb18030"
    carry = b""
    for part in _chunks(path):
        chunk = carry + part if carry else part
        cut = _incomplete_tail(chunk)
        if not _is_utf8(memoryview(chunk)[:cut]):  # a view: slicing bytes copies them
            return "gb18030"
        carry = chunk[cut:]
    return "utf-8" if _is_utf8(carry) else "gb18030"


def transcode_to_utf8(path: Path, target: Path) -> None:
    """GB18030 → UTF-8 in chunks: DuckDB's encodings extension cannot be installed here."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with _open_text_bytes(path) as src, target.open("wb") as dst:
        reader = codecs.getreader("gb18030")(src)
        while chunk := reader.read(_CHUNK):
            dst.write(chunk.encode("utf-8"))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _checks(feed: Feed, present: set[str]) -> list[str]:
    """SQL expressions that yield 'code|reason' for a failed check, else null.

    They run on the read (`_read_group`), where `_period` is the first day of the batch's month.
    """
    checks = []
    if feed.period_field and feed.period_field in present:
        col = _quote(feed.period_field)
        # A month column (YYYY-MM) or a timestamp: either way, its month must be the batch's.
        as_ts = (
            _typed(feed.period_field)
            if _is_typed(feed, feed.period_field)
            else f"try_cast(case when length({col}) = 7 then {col} || '-01' else {col} end "
            "as timestamp)"
        )
        checks.append(
            f"case when {as_ts} > now()::timestamp then "
            f"'future_timestamp|{feed.period_field} is in the future: ' || {col} end"
        )
        checks.append(
            f"case when date_trunc('month', {as_ts}) <> _period then "
            f"'outside_batch_month|{feed.period_field} ' || {col} "
            f"|| ' is outside the batch month ' || strftime(_period, '%Y-%m') end"
        )
    for f in feed.fields:
        col = _quote(f.name) if f.name in present else "null"
        if f.required:
            # Blank means empty or spaces only (trim's sense); trimming every value cost
            # a sixth of the read, so only values that start with a space are trimmed.
            checks.append(
                f"case when {col} is null or {col} = '' "
                f"or (starts_with({col}, ' ') and trim({col}) = '') then "
                f"'missing_required|required field {f.name} is empty' end"
            )
        if f.name not in present:
            continue
        if f.type == "code6":
            checks.append(
                f"case when {col} is not null and not regexp_full_match({col}, '[0-9]{{6}}') "
                f"then 'malformed_code|{f.name} is not a 6-digit division code: ' || {col} end"
            )
        elif f.type == "month":
            checks.append(
                f"case when {col} is not null and try_strptime({col} || '-01', '%Y-%m-%d') is null "
                f"then 'unparsable_month|{f.name} is not a YYYY-MM month: ' || {col} end"
            )
        elif f.type != "str":
            checks.append(
                f"case when {col} is not null and {_typed(f.name)} is null "
                f"then 'unparsable_{f.type}|{f.name} is not a valid {f.type}: ' || {col} end"
            )
    return checks


def _is_typed(feed: Feed, name: str) -> bool:
    """Fields cast into a typed column of `checked` (the check and the insert use it)."""
    return any(f.name == name and f.type not in ("str", "code6", "month") for f in feed.fields)


def _typed(name: str) -> str:
    return _quote(f"__typed_{name}")


@dataclass
class _File:
    """A new or changed landed file, and how to read it."""

    path: Path
    rel: str
    checksum: str
    replacing: bool
    feed: str
    period: str | None
    admdvs: str | None
    received: datetime
    ext: str = ""
    encoding: str | None = None
    source: Path | None = None  # what DuckDB reads: the file, or its UTF-8 transcoding
    header: tuple[str, ...] = ()
    result: BatchResult = field(default_factory=lambda: BatchResult("", "loaded"))
    extra: list[str] = field(default_factory=list)


def ingest(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    scratch: Path,
    key: bytes,
    only: Callable[[str], bool] | None = None,
    force: bool = False,
) -> IngestReport:
    """Load every new or changed batch under `landing` into the raw layer.

    only: load just the batches whose landing path it accepts (a region-month reload);
    force: read them again even when their bytes are known (their rows are replaced).
    """
    ensure_schema(con)
    check_key(con, key)
    report = IngestReport()
    started = time.perf_counter()
    known = dict(con.execute("select path, checksum from ops.batches").fetchall())
    files = sorted(p for p in landing.rglob("*") if p.is_file() and not p.name.endswith(".part"))
    if only is not None:
        files = [p for p in files if only(p.relative_to(landing).as_posix())]

    # Each file's state on disk when it was last hashed, as `_LANDED` orders it. A file
    # whose size, times and inode are still those, and whose hash the ledger holds, has
    # the same bytes: any write changes its change time, which no tool can set back.
    landed = {
        path: tuple(state)
        for path, *state in con.execute(
            f"select path, {', '.join(_LANDED)} from ops.landed_files"
        ).fetchall()
    }
    hashed: dict[str, tuple] = {}  # the same, for the files hashed in this run

    # Hashing and reading release the GIL: two threads read two files at once (at `medium`
    # the landing is 6 GB, hashed and validated before DuckDB reads a byte of it). A file
    # is looked at by one task from its hash to its header, so a small one is read once.
    def look(path: Path) -> _File | None:
        rel = path.relative_to(landing).as_posix()
        looked_at = time.time_ns()
        stat = path.stat()
        disk = (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
        before = landed.get(rel)
        if (
            not force
            and before is not None
            and before[:4] == disk
            and max(stat.st_mtime_ns, stat.st_ctime_ns) + _SETTLED_NS < before[4]
            and known.get(rel) == before[5]
        ):
            return None
        checksum, chunks = file_checksum(path, keep=stat.st_size <= _IN_MEMORY)
        # The state taken before the hash: a file written meanwhile shows a later one.
        hashed[rel] = (*disk, looked_at, checksum)
        if known.get(rel) == checksum and not force:
            return None
        match = _LAYOUT.match(rel)
        f = _File(
            path=path,
            rel=rel,
            checksum=checksum,
            replacing=rel in known,
            feed=match["feed"] if match else rel.split("/")[0],
            period=f"{match['period']}-01" if match else None,
            admdvs=match["admdvs"] if match else None,
            received=datetime.fromtimestamp(stat.st_mtime, UTC).replace(tzinfo=None),
            ext=match["ext"] if match else "",
        )
        f.result.path = rel
        if not match:
            _reject(
                f,
                "path does not follow "
                "<feed>/period=YYYY-MM/admdvs=NNNNNN/<batch>.csv|csv.gz|parquet",
            )
        elif f.feed not in FEEDS:
            _reject(f, f"unknown feed {f.feed!r}")
        else:
            try:
                _prepare(f, scratch, chunks)
            except BatchRejected as exc:
                _reject(f, str(exc))
        return f

    try:
        with ThreadPoolExecutor(_SCAN_THREADS, thread_name_prefix="yibao-scan") as pool:
            looked = list(pool.map(look, files))
    except BaseException:
        # A file that could not be read at all: the other tasks' UTF-8 copies hold
        # personal data and nobody will read them (runs hold the home's lock).
        shutil.rmtree(scratch / "transcoded", ignore_errors=True)
        raise
    todo: list[_File] = [f for f in looked if f is not None]
    report.skipped = len(looked) - len(todo)
    report.seconds["files (hash, encoding)"] = time.perf_counter() - started
    try:
        groups: dict[tuple, list[_File]] = {}
        for f in todo:
            if f.result.outcome == "rejected":
                _record(con, [f])
                continue
            groups.setdefault((f.feed, f.ext == "parquet", f.header), []).append(f)
        for (feed, _, _), files_alike in groups.items():
            for group in _slices(files_alike, _GROUP_BYTES):
                started = time.perf_counter()
                _load_or_split(con, FEEDS[feed], group, key)
                spent = time.perf_counter() - started
                report.seconds[feed] = report.seconds.get(feed, 0.0) + spent
        _remember(con, hashed)
    finally:
        for f in todo:  # the UTF-8 copies hold personal data: never keep them
            if f.source is not None and f.source != f.path:
                f.source.unlink(missing_ok=True)
    report.batches = [f.result for f in todo]
    return report


def _remember(con: duckdb.DuckDBPyConnection, hashed: dict[str, tuple]) -> None:
    """Record the state on disk of the files hashed in this run. A file recorded with a
    hash the ledger does not hold (its load failed) is hashed again next time anyway."""
    if not hashed:
        return
    columns = {"path": list(hashed)}
    for i, name in enumerate(_LANDED):
        columns[name] = [state[i] for state in hashed.values()]
    con.register("hashed_files", pa.table(columns))
    try:
        con.execute(
            f"insert or replace into ops.landed_files (path, {', '.join(_LANDED)}) "
            "select * from hashed_files"
        )
    finally:
        con.unregister("hashed_files")


def _slices(files: list[_File], cap: int) -> list[list[_File]]:
    """Consecutive runs of `files` of at most `cap` bytes on disk (at least one file each):
    one statement reads a run, so what it holds in memory stays bounded at any tier
    (3.5 GB of fee lines read as one group spilled to disk at `medium`)."""
    runs: list[list[_File]] = []
    size = 0
    for f in files:
        n = f.path.stat().st_size
        if not runs or size + n > cap:
            runs.append([])
            size = 0
        runs[-1].append(f)
        size += n
    return runs


def _load_or_split(con: duckdb.DuckDBPyConnection, feed: Feed, group: list[_File], key: bytes):
    try:
        _load_group(con, feed, group, key)
    except duckdb.Error:
        # One file spoiled the group's read: load each on its own, so that only
        # the bad one is rejected, with its own message.
        for f in group:
            try:
                _load_group(con, feed, [f], key)
            except duckdb.Error as exc:
                _reject(f, f"unreadable file: {str(exc).splitlines()[0]}")
                _record(con, [f])


def _reject(f: _File, reason: str) -> None:
    f.result = BatchResult(f.rel, "rejected", reason=reason)


def _prepare(f: _File, scratch: Path, chunks: list[bytes] | None = None) -> None:
    """Encoding, the UTF-8 source DuckDB will read, and the header; a batch missing a
    required column is rejected here, before any read. `chunks`: the file's bytes, when
    they are in hand."""
    feed = FEEDS[f.feed]
    if f.ext == "parquet":
        f.encoding, f.source = "parquet", f.path
        try:
            f.header = tuple(pq.read_schema(f.path).names)
        except (pa.ArrowException, OSError) as exc:
            raise BatchRejected(f"unreadable file: {str(exc).splitlines()[0]}") from exc
    else:
        plain = chunks is not None and f.ext == "csv"  # gzip is read from the file
        f.encoding = detect_encoding(f.path, chunks if plain else None)
        f.source = f.path
        if f.encoding != "utf-8":
            # The name keeps the batch's month: the read takes it from the file's path.
            name = f"{hashlib.sha1(f.rel.encode()).hexdigest()}.period={f.period[:7]}.csv"
            f.source = scratch / "transcoded" / name
            transcode_to_utf8(f.path, f.source)
        if plain and f.source == f.path and chunks and b"\n" in chunks[0]:
            first = chunks[0].split(b"\n", 1)[0].decode("utf-8-sig").rstrip("\r\n")
        else:
            with _open_text_bytes(f.source) as fh:
                first = fh.readline().decode("utf-8-sig").rstrip("\r\n")
        f.header = tuple(next(csv.reader([first]), []))
        if not f.header:
            raise BatchRejected("empty file: no header line")
    missing = [name for name in feed.required if name not in f.header]
    if missing:
        raise BatchRejected(f"missing required column(s): {', '.join(missing)}")
    f.extra = [c for c in f.header if c not in {x.name for x in feed.fields}]


def _read_names(f: _File) -> list[str]:
    """The names a file's columns are read under, in header order: a contract field's own,
    `__extra_<i>` for an extra column, whatever its name (it may be one the loader or
    DuckDB uses for a column of its own, `_file`, `_failed` or `filename`)."""
    return [f"__extra_{f.extra.index(c)}" if c in f.extra else c for c in f.header]


def _source(group: list[_File]) -> tuple[str, dict]:
    """SQL reading the group's files as text, one column per header field (named by
    `_read_names`), with `_file` (and `_line_no` for Parquet, which numbers its rows),
    and its parameters."""
    sources = [str(f.source) for f in group]
    names = _read_names(group[0])
    if group[0].ext == "parquet":
        # An empty string is a missing value, as in CSV (where DuckDB reads "" and an
        # empty field as null): an empty optional date was quarantined as unparsable.
        values = ", ".join(
            f"nullif({_quote(c)}::varchar, '') as {_quote(n)}"
            for c, n in zip(group[0].header, names, strict=True)
        )
        return (
            f"select __yibao_file as _file, file_row_number + 1 as _line_no, {values} "
            "from read_parquet($paths, filename = '__yibao_file', file_row_number = true, "
            "hive_partitioning = false)",
            {"paths": sources},
        )
    # A row with too few or too many fields must not stop the good ones: DuckDB sets it
    # aside (store_rejects) and it is quarantined with its line number. The header is
    # known, so nothing is sniffed; CRLF, a UTF-8 BOM and gzip are read as they come.
    columns = "{" + ", ".join(f"{_sql_str(n)}: 'VARCHAR'" for n in names) + "}"
    return (
        "select __yibao_file as _file, columns(* exclude __yibao_file) "
        f"from read_csv($paths, header = true, auto_detect = false, columns = {columns}, "
        "delim = ',', quote = '\"', escape = '\"', filename = '__yibao_file', "
        "hive_partitioning = false, ignore_errors = true, store_rejects = true, "
        "rejects_table = 'batch_rejects_raw', rejects_scan = 'batch_reject_scans')",
        {"paths": sources},
    )


def _targets(feed: Feed, present: set[str], key: bytes) -> list[tuple[str, str]]:
    """(raw column, SQL value) for every column of the feed's raw table that comes from
    the file: typed fields from their cast, certificate numbers as their pseudonym."""
    out = []
    for fld in feed.fields:
        if fld.name in feed.drop:
            continue
        col = _quote(fld.name) if fld.name in present else "null"
        if fld.name in feed.pseudonymise:
            out.append((f"{fld.name}_hmac", pseudonym_sql(f"nullif(trim({col}), '')", key)))
        elif fld.name in present and _is_typed(feed, fld.name):
            out.append((fld.name, _typed(fld.name)))
        else:
            out.append((fld.name, f"cast({col} as {DUCKDB_TYPES[fld.type]})"))
    return out


def _read_group(
    con: duckdb.DuckDBPyConnection, feed: Feed, group: list[_File], key: bytes
) -> list[str]:
    """Read the group's files once into temp table `batch_read`, as the raw table will hold
    them (typed, pseudonymised) with `_failed` ('code|reason' of the first failed check,
    else null) and, for the rows that fail, `_record` (the fields as received, personal
    ones masked); count each file's readable records into `batch_counts`, put its
    unreadable lines (wrong number of fields) into `batch_rejects`, and define view `batch`
    over `batch_read` with each record's `_line_no`. Returns the raw columns it filled.

    One pass does the casting, checking and hashing while the text is in hand: a table of
    text read back for the checks and again for the insert cost a fifth more (each value
    cast twice, the text stored and scanned twice).
    """
    con.execute("drop table if exists batch_rejects; drop table if exists batch_reject_scans")
    parquet = group[0].ext == "parquet"
    header = group[0].header
    present = set(header)
    source, params = _source(group)
    # The batch's month, for the month check, from the file's path (landing layout, kept
    # in a transcoded copy's name): DuckDB gives a file's name once per chunk, so this
    # costs nothing per row (a join to a table of files might not keep the read order,
    # which the line numbers rely on).
    period = "cast(regexp_extract(_file, '.*period=(\\d{4}-\\d{2})', 1) || '-01' as date)"
    for f in group:  # else the month check would pass every row unseen
        found = re.findall(r"period=(\d{4}-\d{2})", str(f.source))
        if not found or f"{found[-1]}-01" != f.period:
            raise RuntimeError(f"{f.source} does not name the month of batch {f.rel}")
    typed = "".join(
        f", try_cast({_quote(fld.name)} as {DUCKDB_TYPES[fld.type]}) as {_typed(fld.name)}"
        for fld in feed.fields
        if fld.name in present and _is_typed(feed, fld.name)
    )
    checks = _checks(feed, present)
    failed = f"coalesce({', '.join(checks)})" if checks else "cast(null as varchar)"
    # The quarantined record keeps every field as received, personal ones masked.
    names = dict(zip(header, _read_names(group[0]), strict=True))
    record = ", ".join(
        f"{_quote(c)} := {_MASK if c in feed.personal else _quote(names[c])}" for c in header
    )
    extra = group[0].extra
    extra_json = (
        "to_json(struct_pack("
        + ", ".join(f"{_quote(c)} := {_quote(names[c])}" for c in extra)
        + "))"
        if extra
        else "cast(null as json)"
    )
    targets = _targets(feed, present, key)
    values = ", ".join(f"{value} as {_quote(name)}" for name, value in targets)
    con.execute(
        "create or replace temp table batch_read as "
        f"select _file, {'_line_no, ' if parquet else ''}{values}, {extra_json} as _extra, "
        "_failed, "
        f"case when _failed is not null then to_json(struct_pack({record})) end as _record "
        f"from (select *, {failed} as _failed "
        f"from (select *, {period} as _period{typed} from ({source})))",
        params,
    )
    if parquet:
        con.execute(
            "create or replace temp table batch_counts as "
            "select _file, count(*) as n from batch_read group by 1"
        )
        con.execute(
            "create temp table batch_rejects (_file varchar, line bigint, csv_line varchar, "
            "error_message varchar)"
        )
        con.execute("create or replace temp view batch as select * from batch_read")
        return [name for name, _ in targets]
    con.execute(
        "create or replace temp table batch_rejects as "
        "select s.file_path as _file, r.line, any_value(r.csv_line) as csv_line, "
        "any_value(r.error_message) as error_message "
        "from batch_rejects_raw r join batch_reject_scans s using (scan_id, file_id) "
        "group by all"
    )
    con.execute("drop table if exists batch_rejects_raw")
    con.execute(
        "create or replace temp table batch_counts as "
        "select _file, min(rowid) as _first, count(*) as n from batch_read group by 1"
    )
    # Record k of a file is on line k + 1 (line 1 is the header), or, in a file with lines
    # set aside, on the k-th line not set aside (one record a line). Rows are stored in
    # the order read, file by file (insertion order is kept), so a file's rows have
    # consecutive rowids and k is arithmetic: a window numbering the wide rows (in the
    # read, or per file) cost as much as the read itself at `medium`. Only the lines of
    # files with rejects are numbered by a window, and they are narrow.
    con.execute(
        """
        create or replace temp view batch as
        with files as (select * from batch_counts),
        rejected as (select _file, count(*) as n from batch_rejects group by 1),
        lines as (
            select _file, unnest(range(2, 2 + files.n + rejected.n)) as line
            from files join rejected using (_file)
        ),
        free as (
            select _file, line, row_number() over (partition by _file order by line) as _k
            from lines anti join batch_rejects using (_file, line)
        ),
        numbered as (
            select b.rowid - files._first + 1 as _k, b.*
            from batch_read b join files using (_file)
        )
        select coalesce(free.line, numbered._k + 1) as _line_no, numbered.* exclude (_k)
        from numbered left join free using (_file, _k)
        """
    )
    return [name for name, _ in targets]


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _load_group(con: duckdb.DuckDBPyConnection, feed: Feed, group: list[_File], key: bytes) -> None:
    """Load a group of batches of one feed, header and format, in one transaction."""
    header = list(group[0].header)
    extra = group[0].extra
    con.execute("begin transaction")
    try:
        _forget(con, group)
        targets = _read_group(con, feed, group, key)
        files = pa.table(
            {
                "_file": [str(f.source) for f in group],
                "_rel": [f.rel for f in group],
            }
        )
        con.register("batch_files", files)
        # The rows that failed a check are few: kept apart with their line numbers.
        con.execute(
            "create or replace temp table failed as "
            "select _file, _line_no, _failed, _record from batch where _failed is not null"
        )
        con.execute(
            f"insert into raw.{feed.name} ({', '.join(targets)}, _extra, _batch_path, _line_no) "
            f"select {', '.join(_quote(t) for t in targets)}, _extra, f._rel, _line_no "
            "from batch join batch_files f using (_file) where _failed is null"
        )
        con.execute(
            "insert into ops.quarantine "
            "select f._rel, _line_no, split_part(_failed, '|', 1), split_part(_failed, '|', 2), "
            "_record from failed join batch_files f using (_file) order by f._rel, _line_no"
        )
        # Lines with the wrong number of fields: kept as text, personal fields masked by
        # their position in the header, and anything shaped like an ID number masked too.
        # A field too many or too few before a personal one moves it (a name came through
        # at the next position), so r positions either side of each are masked as well,
        # r the number of fields too many or too few, at least 1.
        personal = [i + 1 for i, c in enumerate(header) if c in feed.personal]
        radius = f"greatest(abs(len(string_split(csv_line, ',')) - {len(header)}), 1)"
        positions = ", ".join(map(str, personal))
        masked = (
            "array_to_string(list_transform(string_split(csv_line, ','), "
            f"lambda x, j: case when list_bool_or(list_transform([{positions}], "
            f"lambda p: abs(j - p) <= {radius})) then {_MASK} else x end), ',')"
            if personal
            else "csv_line"
        )
        con.execute(
            f"""
            insert into ops.quarantine
            select f._rel, r.line, 'wrong_field_count', r.error_message,
                to_json(struct_pack(
                    line := regexp_replace({masked}, '[0-9]{{17}}[0-9Xx]', '***', 'g')
                ))
            from batch_rejects r join batch_files f using (_file)
            order by f._rel, r.line
            """
        )
        counts = {
            rel: (read, bad)
            for rel, read, bad in con.execute(
                "with n as (select * from batch_counts), "
                "bad as (select _file, count(*) as n from failed group by 1) "
                "select f._rel, n.n, coalesce(bad.n, 0) "
                "from n join batch_files f using (_file) left join bad using (_file)"
            ).fetchall()
        }
        rejected = dict(
            con.execute(
                "select f._rel, count(*) from batch_rejects r join batch_files f using (_file) "
                "group by 1"
            ).fetchall()
        )
        problems: dict[str, list[str]] = {}
        for rel, line, code, reason in con.execute(
            f"""
            select path, line_no, reason_code, reason from (
                select *, row_number() over (partition by path order by line_no) as k
                from ops.quarantine where path in (select _rel from batch_files)
            ) where k <= {PROBLEMS_PER_BATCH} order by path, line_no
            """
        ).fetchall():
            problems.setdefault(rel, []).append(f"{rel}:{line}: {code}: {reason}")
        for f in group:
            read, bad = counts.get(f.rel, (0, 0))
            short = rejected.get(f.rel, 0)
            f.result = BatchResult(f.rel, "loaded", read + short, read - bad, bad + short)
            f.result.problems = problems.get(f.rel, [])
            if bad + short:
                f.result.outcome = "loaded_with_quarantine"
                f.result.reason = f"{bad + short} of {read + short} record(s) quarantined"
            if extra:
                note = f"extra column(s) kept in _extra: {', '.join(extra)}"
                f.result.reason = f"{f.result.reason}; {note}" if f.result.reason else note
            f.extra = extra
        _record(con, group, in_transaction=True)
        con.unregister("batch_files")
        con.execute(
            "drop view if exists batch; drop table if exists batch_read; "
            "drop table if exists batch_counts; drop table if exists failed"
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise


def _forget(con: duckdb.DuckDBPyConnection, group: list[_File]) -> None:
    """Delete the rows of the re-delivered batches in `group` (inside a transaction).

    A correction replaces exactly the rows of the batch it corrects; the path names the
    feed, so its rows can only be in that feed's table. New batches have none.
    """
    for f in group:
        if not f.replacing:
            continue
        if f.feed in FEEDS:
            con.execute(f"delete from raw.{f.feed} where _batch_path = $p", {"p": f.rel})
        con.execute("delete from ops.quarantine where path = $p", {"p": f.rel})


def _record(con: duckdb.DuckDBPyConnection, group: list[_File], in_transaction: bool = False):
    """Write the ledger rows of `group` (inside the caller's transaction when there is one)."""
    rows = pa.table(
        {
            "path": [f.rel for f in group],
            "checksum": [f.checksum for f in group],
            "feed": [f.feed for f in group],
            "period": pa.array(
                [date.fromisoformat(f.period) if f.period else None for f in group], pa.date32()
            ),
            "admdvs": [f.admdvs for f in group],
            "encoding": [f.encoding for f in group],
            "rows_read": [f.result.rows_read for f in group],
            "rows_loaded": [f.result.rows_loaded for f in group],
            "rows_quarantined": [f.result.rows_quarantined for f in group],
            "outcome": [f.result.outcome for f in group],
            "reason": [f.result.reason for f in group],
            "extra_columns": pa.array([f.extra for f in group], pa.list_(pa.string())),
            "received_at": pa.array([f.received for f in group], pa.timestamp("us")),
        }
    )
    con.register("ledger_rows", rows)
    try:
        if not in_transaction:
            con.execute("begin transaction")
            _forget(con, group)  # a rejected re-delivery replaces the batch too
        con.execute(
            "insert or replace into ops.batches select *, now()::timestamp from ledger_rows"
        )
        if not in_transaction:
            con.execute("commit")
    except Exception:
        if not in_transaction:
            con.execute("rollback")
        raise
    finally:
        con.unregister("ledger_rows")
