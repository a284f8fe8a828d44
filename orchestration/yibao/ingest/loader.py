"""Landing → raw: every file recorded, every record loaded or quarantined with a reason.

A batch is identified by its path under ``landing/``. The same bytes seen again
change nothing; new bytes under the same path replace exactly that batch's rows,
in one transaction. DuckDB does the reading, checking and casting in SQL.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from yibao.ingest.feeds import DUCKDB_TYPES, FEEDS, Feed
from yibao.ingest.pseudonym import hmac_sql

_LAYOUT = re.compile(
    r"^(?P<feed>[a-z_]+)/period=(?P<period>\d{4}-\d{2})/admdvs=(?P<admdvs>\d{6})/"
    r"(?P<batch>[^/]+)\.(?P<ext>csv|csv\.gz|parquet)$"
)
_CHUNK = 1 << 20  # bytes per read when hashing and sniffing encodings
_MASK = "'***'"  # what personal fields look like in the quarantine

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
create table if not exists ops.quarantine (
    path varchar not null,
    line_no bigint not null,
    reason_code varchar not null,
    reason varchar not null,
    record json
);
"""


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


@dataclass
class IngestReport:
    batches: list[BatchResult] = field(default_factory=list)
    skipped: int = 0

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
            cols.append(f"{f.name}_hmac varchar")
        else:
            cols.append(f"{f.name} {DUCKDB_TYPES[f.type]}")
    cols += ["_extra json", "_batch_path varchar not null", "_line_no bigint not null"]
    return f"create table if not exists raw.{feed.name} (\n    " + ",\n    ".join(cols) + "\n)"


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(LEDGER_DDL)
    for feed in FEEDS.values():
        con.execute(raw_table_ddl(feed))


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _open_text_bytes(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")


def detect_encoding(path: Path) -> str:
    """'utf-8' if the whole file decodes as UTF-8, else 'gb18030' (the file does not say)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with _open_text_bytes(path) as fh:
            while chunk := fh.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def transcode_to_utf8(path: Path, target: Path) -> None:
    """GB18030 → UTF-8 in chunks: DuckDB's encodings extension cannot be installed here."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with _open_text_bytes(path) as src, target.open("wb") as dst:
        reader = codecs.getreader("gb18030")(src)
        while chunk := reader.read(_CHUNK):
            dst.write(chunk.encode("utf-8"))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _read_batch(con: duckdb.DuckDBPyConnection, path: Path, ext: str) -> None:
    """Read one file into temp table `batch` (all values as text, with line numbers) and
    its unreadable lines (wrong number of fields) into `batch_rejects`."""
    con.execute("drop table if exists batch_rejects; drop table if exists batch_reject_scans")
    if ext == "parquet":
        source = "read_parquet($path, hive_partitioning = false)"
        first_line = 1  # Parquet has no header line: record numbers start at 1
        con.execute(
            "create temp table batch_rejects (line bigint, error_type varchar, "
            "csv_line varchar, error_message varchar)"
        )
    else:
        # A row with too few or too many fields must not stop the good ones: DuckDB
        # sets it aside (store_rejects) and we quarantine it with its line number.
        source = (
            "read_csv($path, header = true, all_varchar = true, delim = ',', quote = '\"',"
            " escape = '\"', hive_partitioning = false, sample_size = -1,"
            " ignore_errors = true, store_rejects = true,"
            " rejects_table = 'batch_rejects', rejects_scan = 'batch_reject_scans')"
        )
        first_line = 2  # line 1 is the header
    try:
        con.execute(
            f"create or replace temp table batch_read as "
            f"select row_number() over () as _seq, columns(*)::varchar from {source}",
            {"path": str(path)},
        )
    except duckdb.Error as exc:
        message = str(exc).splitlines()[0]
        raise BatchRejected(f"unreadable file: {message}") from exc
    # Accepted rows take the line numbers the rejected ones did not (one record a line).
    con.execute(
        f"""
        create or replace temp table batch as
        with rejected as (select distinct line from batch_rejects),
        lines as (
            select l as line
            from range({first_line}, {first_line}
                + (select count(*) from batch_read) + (select count(*) from rejected)) t(l)
            where l not in (select line from rejected)
        ),
        numbered as (select line, row_number() over (order by line) as _seq from lines)
        select numbered.line as _line_no, batch_read.* exclude (_seq)
        from batch_read
        join numbered using (_seq)
        order by _line_no
        """
    )


def _checks(feed: Feed, present: set[str], period: str | None = None) -> list[str]:
    """SQL expressions that yield 'code|reason' for a failed check, else null."""
    checks = []
    if feed.period_field and feed.period_field in present and period:
        col = _quote(feed.period_field)
        # A month column (YYYY-MM) or a timestamp: either way, its month must be the batch's.
        as_ts = (
            f"try_cast(case when length({col}) = 7 then {col} || '-01' else {col} end as timestamp)"
        )
        checks.append(
            f"case when {as_ts} > now()::timestamp then "
            f"'future_timestamp|{feed.period_field} is in the future: ' || {col} end"
        )
        checks.append(
            f"case when date_trunc('month', {as_ts}) <> date '{period}' then "
            f"'outside_batch_month|{feed.period_field} ' || {col} "
            f"|| ' is outside the batch month {period[:7]}' end"
        )
    for f in feed.fields:
        col = _quote(f.name) if f.name in present else "null"
        if f.required:
            checks.append(
                f"case when {col} is null or trim({col}) = '' then "
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
            sql_type = DUCKDB_TYPES[f.type]
            checks.append(
                f"case when {col} is not null and try_cast({col} as {sql_type}) is null "
                f"then 'unparsable_{f.type}|{f.name} is not a valid {f.type}: ' || {col} end"
            )
    return checks


def _load_batch(
    con: duckdb.DuckDBPyConnection, feed: Feed, rel: str, key: bytes, period: str | None = None
) -> tuple[int, int, int, list[str]]:
    header = [r[0] for r in con.execute("describe batch").fetchall() if r[0] != "_line_no"]
    present = set(header)
    missing = [name for name in feed.required if name not in present]
    if missing:
        raise BatchRejected(f"missing required column(s): {', '.join(missing)}")
    extra = [c for c in header if c not in {f.name for f in feed.fields}]

    checks = _checks(feed, present, period)
    failed = f"list_filter([{', '.join(checks)}], lambda x: x is not null)[1]" if checks else "null"
    con.execute(f"create or replace temp table checked as select *, {failed} as _failed from batch")

    targets, values = [], []
    for f in feed.fields:
        if f.name in feed.drop:
            continue
        col = _quote(f.name) if f.name in present else "null"
        if f.name in feed.pseudonymise:
            targets.append(f"{f.name}_hmac")
            values.append(hmac_sql(f"nullif(trim({col}), '')", key))
        else:
            targets.append(f.name)
            values.append(f"cast({col} as {DUCKDB_TYPES[f.type]})")
    extra_json = (
        "to_json(struct_pack(" + ", ".join(f"{_quote(c)} := {_quote(c)}" for c in extra) + "))"
        if extra
        else "null"
    )
    con.execute(
        f"insert into raw.{feed.name} ({', '.join(targets)}, _extra, _batch_path, _line_no) "
        f"select {', '.join(values)}, {extra_json}, $rel, _line_no "
        f"from checked where _failed is null",
        {"rel": rel},
    )
    # The quarantined record keeps every field as received, personal ones masked.
    record = ", ".join(
        f"{_quote(c)} := {_MASK if c in feed.personal else _quote(c)}" for c in header
    )
    con.execute(
        f"insert into ops.quarantine "
        f"select $rel, _line_no, split_part(_failed, '|', 1), split_part(_failed, '|', 2), "
        f"to_json(struct_pack({record})) from checked where _failed is not null",
        {"rel": rel},
    )
    # Lines with the wrong number of fields: kept as text, personal fields masked by
    # their position in the header, and anything shaped like an ID number masked too.
    personal = [i + 1 for i, c in enumerate(header) if c in feed.personal]
    masked = (
        "array_to_string(list_transform(string_split(csv_line, ','), "
        f"lambda x, i: case when i in ({', '.join(map(str, personal))}) then {_MASK} else x end"
        "), ',')"
        if personal
        else "csv_line"
    )
    con.execute(
        f"""
        insert into ops.quarantine
        select $rel, line, 'wrong_field_count', any_value(error_message),
            to_json(struct_pack(
                line := regexp_replace(any_value({masked}), '[0-9]{{17}}[0-9Xx]', '***', 'g')
            ))
        from batch_rejects
        group by line
        order by line
        """,
        {"rel": rel},
    )
    rows_read, rows_bad = con.execute("select count(*), count(_failed) from checked").fetchone()
    rejected = con.execute("select count(distinct line) from batch_rejects").fetchone()[0]
    return rows_read + rejected, rows_read - rows_bad, rows_bad + rejected, extra


def ingest(
    con: duckdb.DuckDBPyConnection, landing: Path, scratch: Path, key: bytes
) -> IngestReport:
    """Load every new or changed batch under `landing` into the raw layer."""
    ensure_schema(con)
    report = IngestReport()
    known = dict(con.execute("select path, checksum from ops.batches").fetchall())
    files = sorted(p for p in landing.rglob("*") if p.is_file() and not p.name.endswith(".part"))
    for path in files:
        rel = path.relative_to(landing).as_posix()
        checksum = file_checksum(path)
        if known.get(rel) == checksum:
            report.skipped += 1
            continue
        replacing = rel in known
        report.batches.append(_ingest_one(con, path, rel, checksum, scratch, key, replacing))
    return report


def _ingest_one(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    rel: str,
    checksum: str,
    scratch: Path,
    key: bytes,
    replacing: bool,
) -> BatchResult:
    match = _LAYOUT.match(rel)
    feed_name = match["feed"] if match else rel.split("/")[0]
    period = f"{match['period']}-01" if match else None
    admdvs = match["admdvs"] if match else None
    received = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)
    encoding = None
    result = BatchResult(rel, "loaded")
    extra: list[str] = []
    con.execute("begin transaction")
    try:
        # A correction replaces exactly the rows of the batch it corrects; the path names
        # the feed, so its rows can only be in that feed's table. New batches have none.
        if replacing:
            if feed_name in FEEDS:
                con.execute(f"delete from raw.{feed_name} where _batch_path = $p", {"p": rel})
            con.execute("delete from ops.quarantine where path = $p", {"p": rel})
        try:
            if not match:
                raise BatchRejected(
                    "path does not follow "
                    "<feed>/period=YYYY-MM/admdvs=NNNNNN/<batch>.csv|csv.gz|parquet"
                )
            if feed_name not in FEEDS:
                raise BatchRejected(f"unknown feed {feed_name!r}")
            source = path
            if match["ext"] != "parquet":
                encoding = detect_encoding(path)
                if encoding != "utf-8":
                    source = (
                        scratch / "transcoded" / (hashlib.sha1(rel.encode()).hexdigest() + ".csv")
                    )
                    transcode_to_utf8(path, source)
            else:
                encoding = "parquet"
            try:
                _read_batch(con, source, match["ext"])
            finally:
                if source != path:  # the UTF-8 copy holds personal data: never keep it
                    source.unlink(missing_ok=True)
            read, loaded, bad, extra = _load_batch(con, FEEDS[feed_name], rel, key, period)
            result.rows_read, result.rows_loaded, result.rows_quarantined = read, loaded, bad
            if bad:
                result.outcome = "loaded_with_quarantine"
                result.reason = f"{bad} of {read} record(s) quarantined"
            if extra:
                note = f"extra column(s) kept in _extra: {', '.join(extra)}"
                result.reason = f"{result.reason}; {note}" if result.reason else note
        except BatchRejected as exc:
            result.outcome, result.reason = "rejected", str(exc)
        con.execute(
            """
            insert or replace into ops.batches values (
                $path, $checksum, $feed, cast($period as date), $admdvs, $encoding,
                $read, $loaded, $bad, $outcome, $reason, $extra, $received, now()::timestamp
            )
            """,
            {
                "path": rel,
                "checksum": checksum,
                "feed": feed_name,
                "period": period,
                "admdvs": admdvs,
                "encoding": encoding,
                "read": result.rows_read,
                "loaded": result.rows_loaded,
                "bad": result.rows_quarantined,
                "outcome": result.outcome,
                "reason": result.reason,
                "extra": extra,
                "received": received,
            },
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return result
