"""The door: every record loaded or quarantined, every file recorded, nothing personal passes."""

import gzip
import io
import json
import os
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from yibao.ingest import loader
from yibao.ingest.loader import ingest
from yibao.ingest.pseudonym import key_id

KEY = b"test-key"
HEADER = (
    "psn_no,psn_cert_type,certno,psn_name,gend,brdy,insutype,psn_type,psn_insu_stas,"
    "psn_insu_date,paus_insu_date,insuplc_admdvs,updt_time"
)
ROW1 = (
    "P1,01,370102199001011234,张三,1,1990-01-01,310,1101,1,2020-01-01,,370100,2024-01-05 10:00:00"
)
ROW2 = (
    "P2,01,370102199202021234,李四,2,1992-02-02,390,1501,1,2021-03-01,,370100,2024-01-06 11:00:00"
)
BATCH = "psn_insu/period=2024-01/admdvs=370100/b1.csv"


def _write(landing: Path, rel: str, text: str, encoding: str = "utf-8") -> Path:
    path = landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode(encoding)
    path.write_bytes(gzip.compress(data) if rel.endswith(".gz") else data)
    return path


@pytest.fixture
def db(tmp_path):
    con = duckdb.connect(str(tmp_path / "build.duckdb"))
    yield con
    con.close()


def _ingest(db, tmp_path):
    return ingest(db, tmp_path / "landing", tmp_path / "scratch", KEY)


def _ledger(db, path=BATCH):
    return db.execute(
        "select rows_read, rows_loaded, rows_quarantined, outcome, reason, encoding "
        "from ops.batches where path = $p",
        {"p": path},
    ).fetchone()


def test_good_batch_is_loaded_and_pseudonymised(db, tmp_path):
    _write(tmp_path / "landing", BATCH, f"{HEADER}\n{ROW1}\n{ROW2}\n")
    report = _ingest(db, tmp_path)
    assert report.summary().startswith("1 batch(es) processed")
    assert _ledger(db) == (2, 2, 0, "loaded", None, "utf-8")
    cols = [r[0] for r in db.execute("describe raw.psn_insu").fetchall()]
    assert "certno" not in cols and "psn_name" not in cols and "certno_hmac" in cols
    dump = str(db.execute("select * from raw.psn_insu").fetchall())
    assert "370102199001011234" not in dump and "张三" not in dump


def test_a_warehouse_with_text_pseudonyms_is_converted_in_place(db, tmp_path):
    """Pseudonyms were 64 hex digits before they became integers: the raw rows keep their
    persons (converted to the value the loader computes now, nothing read again), and the
    models built on text keys are dropped so that the next build makes them in full."""
    _write(tmp_path / "landing", BATCH, f"{HEADER}\n{ROW1}\n{ROW2}\n")
    _ingest(db, tmp_path)
    now = db.execute("select psn_no, certno_hmac from raw.psn_insu order by 1").fetchall()
    hexes = [format(v << 132, "064x") for _, v in now]  # what the old loader stored
    db.execute("alter table raw.psn_insu alter certno_hmac set data type varchar")
    for (psn_no, _), text in zip(now, hexes, strict=True):
        db.execute(
            "update raw.psn_insu set certno_hmac = $h where psn_no = $p", {"h": text, "p": psn_no}
        )
    db.execute("create schema intermediate; create schema marts")
    db.execute("create table intermediate.int_enrollment_history as select 'ab' as person_key")
    db.execute("create table intermediate.int_rule_hits as select 'p|ab' as _scope_key")
    db.execute("create table intermediate.int_rule_hits__state as select 1 as x")
    db.execute("create table marts.coverage_monthly as select 1 as insured_persons")
    loader.ensure_schema(db)
    assert db.execute("select psn_no, certno_hmac from raw.psn_insu order by 1").fetchall() == now
    tables = {r[0] for r in db.execute("select table_name from duckdb_tables()").fetchall()}
    assert "coverage_monthly" in tables
    assert not tables & {"int_enrollment_history", "int_rule_hits", "int_rule_hits__state"}
    loader.ensure_schema(db)  # converted once: nothing more to do
    assert "coverage_monthly" in {
        r[0] for r in db.execute("select table_name from duckdb_tables()").fetchall()
    }


def test_a_run_under_another_key_is_refused_and_loads_nothing(db, tmp_path):
    """A second key would give every person a second pseudonym (counted twice, never a
    duplicate): the warehouse keeps the id of the key its pseudonyms were made with and
    refuses another, with the reason in one line, until the key is restored."""
    landing = tmp_path / "landing"
    _write(landing, BATCH, f"{HEADER}\n{ROW1}\n")
    _ingest(db, tmp_path)
    before = db.execute("select * from raw.psn_insu").fetchall()
    later = "psn_insu/period=2024-02/admdvs=370100/b2.csv"
    _write(landing, later, f"{HEADER}\n{ROW2.replace('2024-01-06', '2024-02-06')}\n")
    with pytest.raises(loader.PseudonymKeyChanged) as refused:
        ingest(db, landing, tmp_path / "scratch", b"another-key")
    message = str(refused.value)
    assert "\n" not in message and "nothing was loaded" in message
    assert key_id(b"another-key") in message and key_id(KEY) in message
    assert "another-key" not in message and KEY.decode() not in message
    assert db.execute("select * from raw.psn_insu").fetchall() == before
    assert db.execute("select count(*) from ops.batches").fetchone() == (1,)
    assert db.execute("select key_id from ops.pseudonym_key").fetchall() == [(key_id(KEY),)]
    # The key restored: the batch that waited loads.
    report = _ingest(db, tmp_path)
    assert [b.path for b in report.batches] == [later]
    assert db.execute("select count(*) from raw.psn_insu").fetchone() == (2,)


def test_a_new_key_takes_the_place_of_one_no_pseudonym_was_made_with(db, tmp_path):
    """Until a person is held, nothing is pseudonymised under the recorded key: a key set
    after a first run that loaded nothing personal is simply recorded instead."""
    _ingest(db, tmp_path)  # an empty landing: the key is recorded, no pseudonym made
    assert db.execute("select key_id from ops.pseudonym_key").fetchall() == [(key_id(KEY),)]
    _write(tmp_path / "landing", BATCH, f"{HEADER}\n{ROW1}\n")
    ingest(db, tmp_path / "landing", tmp_path / "scratch", b"the-real-key")
    assert db.execute("select key_id from ops.pseudonym_key").fetchall() == [
        (key_id(b"the-real-key"),)
    ]
    assert db.execute("select count(*) from raw.psn_insu").fetchone() == (1,)


def test_the_load_s_temporary_table_holds_no_personal_data(db, tmp_path, monkeypatch):
    """DuckDB may spill the table a group is read into to disk: it holds the pseudonym
    and masked records only, for good rows and quarantined ones alike."""
    seen = []
    read_group = loader._read_group

    def spy(con, *args):
        targets = read_group(con, *args)
        seen.append(str(con.execute("select * from batch_read").fetchall()))
        return targets

    monkeypatch.setattr(loader, "_read_group", spy)
    bad = ROW2.replace("1992-02-02", "1992-13-45")  # quarantined: its record is kept
    _write(tmp_path / "landing", BATCH, f"{HEADER}\n{ROW1}\n{bad}\n")
    _ingest(db, tmp_path)
    assert len(seen) == 1 and "1992-13-45" in seen[0]
    for personal in ("370102199001011234", "370102199202021234", "张三", "李四"):
        assert personal not in seen[0]


def test_resent_unchanged_changes_nothing(db, tmp_path):
    _write(tmp_path / "landing", BATCH, f"{HEADER}\n{ROW1}\n")
    _ingest(db, tmp_path)
    report = _ingest(db, tmp_path)
    assert report.skipped == 1 and report.batches == []
    assert db.execute("select count(*) from raw.psn_insu").fetchone() == (1,)


def test_a_file_that_disappears_keeps_its_rows_and_its_ledger_entry(db, tmp_path):
    """Landing is an inbox, not the record: a batch cleaned away after loading stays."""
    other = "psn_insu/period=2024-01/admdvs=370200/b1.csv"
    gone = _write(tmp_path / "landing", BATCH, f"{HEADER}\n{ROW1}\n")
    _write(tmp_path / "landing", other, f"{HEADER}\n{ROW2.replace('370100', '370200')}\n")
    _ingest(db, tmp_path)
    rows = db.execute("select * from raw.psn_insu order by all").fetchall()
    ledger = db.execute("select * from ops.batches order by path").fetchall()
    gone.unlink()
    report = _ingest(db, tmp_path)
    assert report.batches == [] and report.skipped == 1
    assert db.execute("select * from raw.psn_insu order by all").fetchall() == rows
    assert db.execute("select * from ops.batches order by path").fetchall() == ledger
    assert len(rows) == 2 and len(ledger) == 2


def _count_hashes(monkeypatch) -> list[str]:
    hashed = []
    checksum = loader.file_checksum

    def spy(path, keep=False):
        hashed.append(path.name)
        return checksum(path, keep)

    monkeypatch.setattr(loader, "file_checksum", spy)
    return hashed


def test_files_unchanged_on_disk_are_not_read_again(db, tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "_SETTLED_NS", 0)  # the file counts as settled at once
    hashed = _count_hashes(monkeypatch)
    path = _write(tmp_path / "landing", BATCH, f"{HEADER}\n{ROW1}\n")
    _ingest(db, tmp_path)
    assert hashed == ["b1.csv"]
    report = _ingest(db, tmp_path)
    assert hashed == ["b1.csv"] and report.skipped == 1 and report.batches == []
    # Corrected in place, same size, its modification time put back (as `cp -p` or
    # `rsync -a` of a file whose time did not change would): the change time moved.
    times = path.stat()
    _write(tmp_path / "landing", BATCH, f"{HEADER}\n{ROW1.replace(',1,2020', ',4,2020')}\n")
    os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))
    assert path.stat().st_size == times.st_size and path.stat().st_mtime_ns == times.st_mtime_ns
    report = _ingest(db, tmp_path)
    assert hashed == ["b1.csv", "b1.csv"] and [b.outcome for b in report.batches] == ["loaded"]
    assert db.execute("select psn_insu_stas from raw.psn_insu").fetchall() == [("4",)]


def test_a_file_changed_just_before_it_was_hashed_is_hashed_again(db, tmp_path, monkeypatch):
    """Its times may not move if it is rewritten within one tick of the file system's
    clock, so they are trusted only for a file that had settled when it was hashed."""
    hashed = _count_hashes(monkeypatch)
    _write(tmp_path / "landing", BATCH, f"{HEADER}\n{ROW1}\n")
    _ingest(db, tmp_path)
    report = _ingest(db, tmp_path)
    assert hashed == ["b1.csv", "b1.csv"] and report.skipped == 1


def test_corrected_batch_replaces_exactly_its_rows(db, tmp_path):
    other = "psn_insu/period=2024-01/admdvs=370100/b2.csv"
    _write(tmp_path / "landing", BATCH, f"{HEADER}\n{ROW1}\n")
    _write(tmp_path / "landing", other, f"{HEADER}\n{ROW2}\n")
    _ingest(db, tmp_path)
    _write(tmp_path / "landing", BATCH, f"{HEADER}\n{ROW1.replace(',1,2020', ',4,2020')}\n")
    _ingest(db, tmp_path)
    rows = db.execute("select psn_no, psn_insu_stas from raw.psn_insu order by psn_no").fetchall()
    assert rows == [("P1", "4"), ("P2", "1")]


def test_bad_records_are_quarantined_with_reason_and_masked(db, tmp_path):
    bad_date = ROW2.replace("1992-02-02", "1992-13-45")
    no_region = ROW1.replace(",370100,", ",,").replace("P1", "P3")
    bad_code = ROW1.replace(",370100,", ",3701,").replace("P1", "P4")
    blank = ROW1.replace("P1", "   ")  # spaces only: blank, as much as empty
    padded = ROW1.replace("P1", " P5")  # a value after a space is a value
    text = f"{HEADER}\n{ROW1}\n{bad_date}\n{no_region}\n{bad_code}\n{blank}\n{padded}\n"
    _write(tmp_path / "landing", BATCH, text)
    _ingest(db, tmp_path)
    read, loaded, quarantined, outcome, reason, _ = _ledger(db)
    assert (read, loaded, quarantined, outcome) == (6, 2, 4, "loaded_with_quarantine")
    assert read == loaded + quarantined
    rows = db.execute(
        "select line_no, reason_code, reason, record from ops.quarantine order by line_no"
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [
        (3, "unparsable_date"),
        (4, "missing_required"),
        (5, "malformed_code"),
        (6, "missing_required"),
    ]
    assert db.execute("select list(psn_no order by psn_no) from raw.psn_insu").fetchone() == (
        [" P5", "P1"],
    )
    assert "1992-13-45" in rows[0][2]
    assert (
        "***" in rows[0][3] and "370102199202021234" not in rows[0][3] and "李四" not in rows[0][3]
    )


def test_missing_required_column_rejects_the_batch(db, tmp_path):
    header = HEADER.replace(",insutype", "")
    row = ROW1.replace(",310,", ",")
    _write(tmp_path / "landing", BATCH, f"{header}\n{row}\n")
    report = _ingest(db, tmp_path)
    assert [b.outcome for b in report.batches] == ["rejected"]
    assert _ledger(db)[3:5] == ("rejected", "missing required column(s): insutype")
    assert db.execute("select count(*) from raw.psn_insu").fetchone() == (0,)


# A small file is hashed, checked and its header taken from bytes read once; a larger
# one (here: every file) is read in chunks, each step on its own.
@pytest.mark.parametrize("in_memory", [True, False])
def test_gb18030_gzip_crlf_bom_and_parquet_are_read(db, tmp_path, monkeypatch, in_memory):
    if not in_memory:
        monkeypatch.setattr(loader, "_IN_MEMORY", -1)
    landing = tmp_path / "landing"
    _write(
        landing,
        "psn_insu/period=2024-01/admdvs=370100/gbk.csv",
        f"{HEADER}\r\n{ROW1}\r\n",
        "gb18030",
    )
    _write(landing, "psn_insu/period=2024-01/admdvs=370100/bom.csv.gz", f"\ufeff{HEADER}\n{ROW2}\n")
    table = pa.table({"admdvs": ["370100"], "year": [2024], "resident_pop": [9515000]})
    pq.write_table(table, landing / "population-2024.parquet")  # outside the layout
    target = landing / "population/period=2024-01/admdvs=100000/pop.parquet"
    target.parent.mkdir(parents=True)
    pq.write_table(table, target)
    _ingest(db, tmp_path)
    outcomes = dict(
        db.execute(
            "select path, outcome || '/' || coalesce(encoding, '') from ops.batches"
        ).fetchall()
    )
    assert outcomes == {
        "psn_insu/period=2024-01/admdvs=370100/gbk.csv": "loaded/gb18030",
        "psn_insu/period=2024-01/admdvs=370100/bom.csv.gz": "loaded/utf-8",
        "population/period=2024-01/admdvs=100000/pop.parquet": "loaded/parquet",
        "population-2024.parquet": "rejected/",
    }
    assert db.execute(
        "select count(*) from raw.psn_insu where psn_no in ('P1', 'P2')"
    ).fetchone() == (2,)
    assert db.execute("select resident_pop from raw.population").fetchone() == (9515000,)
    # The transcoded UTF-8 copy held certificate numbers: it is gone.
    assert not [p for p in (tmp_path / "scratch").rglob("*") if p.is_file()]


def test_extra_columns_are_kept_and_reported(db, tmp_path):
    _write(tmp_path / "landing", BATCH, f"{HEADER},memo\n{ROW1},hello\n")
    _ingest(db, tmp_path)
    assert "memo" in _ledger(db)[4]
    assert db.execute("select _extra->>'memo' from raw.psn_insu").fetchone() == ("hello",)


# Names the loader (and DuckDB's file options) use for their own columns: an extra
# column may bear any of them and is still only an extra column.
OWN_NAMES = ["_file", "_line_no", "_period", "_failed", "_record", "_extra", "filename",
             "__typed_brdy"]  # fmt: skip


@pytest.mark.parametrize("form", ["csv", "parquet"])
def test_extra_columns_named_like_the_loaders_own_are_kept(db, tmp_path, form):
    values = ",".join(f"v{i}" for i in range(len(OWN_NAMES)))
    unparsable = ROW2.replace("1992-02-02", "1992-02-30")
    text = f"{HEADER},{','.join(OWN_NAMES)}\n{ROW1},{values}\n{unparsable},{values}\n"
    batch = _write_as(tmp_path / "landing", BATCH, text, form)
    _ingest(db, tmp_path)
    read, loaded, quarantined, outcome, reason, _ = _ledger(db, batch)
    assert (read, loaded, quarantined, outcome) == (2, 1, 1, "loaded_with_quarantine"), reason
    assert all(name in reason for name in OWN_NAMES)
    [(extra,)] = db.execute("select _extra from raw.psn_insu").fetchall()
    assert json.loads(extra) == {name: f"v{i}" for i, name in enumerate(OWN_NAMES)}
    [(code, record)] = db.execute("select reason_code, record from ops.quarantine").fetchall()
    record = json.loads(record)
    assert code == "unparsable_date" and record["brdy"] == "1992-02-30"
    assert record["_failed"] == "v3" and record["certno"] != "370102199202021234"


def test_every_feed_of_the_contract_has_a_raw_table(db, tmp_path):
    from yibao.ingest.feeds import FEEDS

    _ingest(db, tmp_path)
    tables = {
        r[0]
        for r in db.execute(
            "select table_name from duckdb_tables() where schema_name = 'raw'"
        ).fetchall()
    }
    assert tables == set(FEEDS)
    setl_cols = {r[0] for r in db.execute("describe raw.setl").fetchall()}
    assert {"certno_hmac", "hifp_pay", "mdtrtarea_admvs"} <= setl_cols
    assert "psn_name" not in setl_cols and "certno" not in setl_cols


def test_fund_ledger_month_is_checked(db, tmp_path):
    header = (
        "admdvs,period,fund_type,bal_open,inc_contrib,inc_subsidy,inc_interest,inc_other,"
        "exp_benefit,exp_other,bal_close"
    )
    good = "370100,2024-01,390,100.00,10.00,5.00,0.10,0.00,12.00,0.00,103.10"
    bad = good.replace("2024-01", "2024-13")
    rel = "fund_ledger/period=2024-01/admdvs=370100/f.csv"
    _write(tmp_path / "landing", rel, f"{header}\n{good}\n{bad}\n")
    _ingest(db, tmp_path)
    assert _ledger(db, rel)[:3] == (2, 1, 1)
    assert db.execute("select reason_code from ops.quarantine").fetchone() == ("unparsable_month",)


def test_rows_with_wrong_field_count_are_quarantined_not_the_batch(db, tmp_path):
    short = ",".join(ROW2.split(",")[:-2])  # two fields missing
    long = ROW2.replace("P2", "P5") + ",surplus"
    quoted = ROW1.replace("P1", "P6").replace("张三", '"张,三"')  # a comma inside quotes is fine
    # A field too many or too few before the personal ones moves them: the name came
    # through unmasked at the next (or previous) position.
    shifted = ROW2.replace("P2,01,", "P8,01,x,").replace("李四", "赵六")
    early = ROW2.replace("P2,01,", "P9,").replace("李四", "钱七")
    _write(
        tmp_path / "landing",
        BATCH,
        f"{HEADER}\n{ROW1}\n{short}\n{long}\n{quoted}\n{shifted}\n{early}\n",
    )
    _ingest(db, tmp_path)
    read, loaded, quarantined, outcome, _, _ = _ledger(db)
    assert (read, loaded, quarantined, outcome) == (6, 2, 4, "loaded_with_quarantine")
    loaded_lines = db.execute(
        "select psn_no, _line_no from raw.psn_insu order by _line_no"
    ).fetchall()
    assert loaded_lines == [("P1", 2), ("P6", 5)]  # line numbers survive the gap
    rows = db.execute(
        "select line_no, reason_code, reason, record from ops.quarantine order by line_no"
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [(n, "wrong_field_count") for n in (3, 4, 6, 7)]
    assert "Expected Number of Columns" in rows[0][2]
    for _, _, _, record in rows:
        assert "370102199202021234" not in record and "***" in record
        assert not {"李四", "赵六", "钱七"} & set(json.loads(record)["line"].split(","))
    # What is not near a personal field stays, for the operator fixing the file.
    assert "2024-01-06 11:00:00" in rows[2][3] and json.loads(rows[2][3])["line"].startswith("P8,")


def _write_as(landing: Path, rel: str, text: str, form: str) -> str:
    """Write `text` (CSV) under `rel` (ending .csv) as CSV, GB18030 CSV, gzip or Parquet."""
    if form == "parquet":
        rel = rel.removesuffix(".csv") + ".parquet"
        names = text.splitlines()[0].split(",")
        table = pacsv.read_csv(
            io.BytesIO(text.encode()),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
        )
        (landing / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, landing / rel)
        return rel
    if form == "csv.gz":
        rel += ".gz"
    _write(landing, rel, text, "gb18030" if form == "gb18030" else "utf-8")
    return rel


# The batch's month is taken from the path DuckDB reads: the landing file's, or for a
# GB18030 file its transcoded copy's, which must keep it.
@pytest.mark.parametrize("form", ["csv", "gb18030", "csv.gz", "parquet"])
def test_timestamps_outside_the_batch_month_or_in_the_future(db, tmp_path, form):
    outside = ROW2.replace("2024-01-06 11:00:00", "2023-12-31 23:59:59")
    future = ROW1.replace("P1", "P7").replace("2024-01-05 10:00:00", "2999-01-05 10:00:00")
    landing = tmp_path / "landing"
    batch = _write_as(landing, BATCH, f"{HEADER}\n{ROW1}\n{outside}\n", form)
    future_batch = _write_as(
        landing, "psn_insu/period=2999-01/admdvs=370100/b9.csv", f"{HEADER}\n{future}\n", form
    )
    _ingest(db, tmp_path)
    assert _ledger(db, batch)[:3] == (2, 1, 1)
    rows = db.execute(
        "select path, line_no, reason_code, reason from ops.quarantine order by path"
    ).fetchall()
    first = 1 if form == "parquet" else 2  # a Parquet file's rows are its lines
    assert [r[:3] for r in rows] == [
        (batch, first + 1, "outside_batch_month"),
        (future_batch, first, "future_timestamp"),
    ]
    assert "2023-12-31 23:59:59" in rows[0][3] and "2024-01" in rows[0][3]


@pytest.mark.parametrize("shift", [0, 1, 2, 3])
@pytest.mark.parametrize("kept", [False, True])
def test_encoding_read_in_chunks_sees_characters_split_across_them(
    tmp_path, monkeypatch, shift, kept
):
    """A character cut by a chunk boundary is valid UTF-8; an invalid byte late in a
    file (past the first chunk) still makes it GB18030. Whether the chunks are read
    for the check or were kept from hashing the file."""

    monkeypatch.setattr(loader, "_CHUNK", 16)
    if kept:
        detect = loader.detect_encoding
        monkeypatch.setattr(
            loader, "detect_encoding", lambda p: detect(p, loader.file_checksum(p, True)[1])
        )
    text = "x" * shift + "张三李四王五赵六," * 7 + "\n"
    utf8 = tmp_path / "utf8.csv"
    utf8.write_bytes(text.encode("utf-8"))
    assert loader.detect_encoding(utf8) == "utf-8"
    gb = tmp_path / "gb.csv"
    gb.write_bytes(("a" * 40 + text).encode("gb18030"))
    assert loader.detect_encoding(gb) == "gb18030"
    late = tmp_path / "late.csv"
    late.write_bytes(text.encode("utf-8") + "张".encode("gb18030") + b"\n")
    assert loader.detect_encoding(late) == "gb18030"
    cut = tmp_path / "cut.csv"  # a file ending inside a character is not UTF-8
    cut.write_bytes(text.encode("utf-8") + "张".encode()[:2])
    assert loader.detect_encoding(cut) == "gb18030"


@pytest.mark.parametrize("group_bytes", [1 << 30, 1])
def test_line_numbers_per_file_when_files_are_read_together_or_apart(
    db, tmp_path, monkeypatch, group_bytes
):
    """Several files read in one statement (or one each): every file's records keep their
    own line numbers, around the lines set aside in one of them."""
    from yibao.ingest import loader

    monkeypatch.setattr(loader, "_GROUP_BYTES", group_bytes)
    short = ",".join(ROW2.split(",")[:-2])
    rows = {
        "a.csv": [ROW1, ROW2.replace("P2", "A2"), ROW2.replace("P2", "A3")],
        "b.csv": [ROW1.replace("P1", "B1"), short, short, ROW2.replace("P2", "B4")],
        "c.csv": [ROW1.replace("P1", "C1")],
    }
    for name, lines in rows.items():
        _write(tmp_path / "landing", BATCH.replace("b1.csv", name), "\n".join([HEADER, *lines]))
    _ingest(db, tmp_path)
    loaded = db.execute(
        "select regexp_extract(_batch_path, '[a-c]\\.csv'), psn_no, _line_no from raw.psn_insu "
        "order by 1, 3"
    ).fetchall()
    assert loaded == [
        ("a.csv", "P1", 2), ("a.csv", "A2", 3), ("a.csv", "A3", 4),
        ("b.csv", "B1", 2), ("b.csv", "B4", 5),
        ("c.csv", "C1", 2),
    ]  # fmt: skip
    quarantined = db.execute("select path, line_no from ops.quarantine order by 1, 2").fetchall()
    assert [(p.rsplit("/", 1)[1], n) for p, n in quarantined] == [("b.csv", 3), ("b.csv", 4)]
    ledger = db.execute("select rows_read, rows_loaded from ops.batches order by path").fetchall()
    assert ledger == [(3, 3), (4, 2), (1, 1)]
