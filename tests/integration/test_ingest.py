"""Ingestion end to end on batches delivered as the provinces deliver them.

`yibao run` names every rejected file and quarantined record (file, line, why) in one
line each; re-sent batches change nothing or replace exactly their rows; over a whole
`small` delivery every record read is loaded or quarantined.
"""

import json

import duckdb
import pyarrow.csv as pacsv
import pytest

from tests.conftest import run_yibao
from yibao.ingest.loader import ingest
from yibao.simulate.generator import generate

pytestmark = pytest.mark.integration


def _truth(home):
    return pacsv.read_csv(home / "truth" / "defects.csv").to_pylist()


def _sql(home, query):
    return json.loads(run_yibao(home, "sql", "--format", "json", query).stdout)


def test_run_names_each_problem_and_resends_replace_exactly_their_batch(tmp_path):
    home = tmp_path
    run_yibao(home, "generate", "--scale", "tiny", "--provinces", "37,44", "--months",
              "2024-01:2024-02", "--defect", "missing_required=0.01")  # fmt: skip
    out = run_yibao(home, "run").stdout
    truth = _truth(home)
    rejected = next(t for t in truth if t["defect_type"] == "missing_required_column")
    assert f"{rejected['batch']}: rejected: missing required column(s): dr_code" in out
    quarantined = _sql(home, "select path, line_no, reason_code from ops.quarantine limit 3")
    for q in quarantined:
        assert f"{q['path']}:{q['line_no']}: {q['reason_code']}: " in out

    corrected = next(t["batch"] for t in truth if t["defect_type"] == "resent_corrected")
    same = next(t["batch"] for t in truth if t["defect_type"] == "resent_unchanged")
    before = {
        r["path"]: r
        for r in _sql(home, "select path, rows_loaded, rows_quarantined, checksum from ops.batches")
    }
    assert before[corrected]["rows_quarantined"] > 0
    run_yibao(home, "generate", "--resend")
    out = run_yibao(home, "run").stdout
    assert "ingest: 1 batch(es) processed" in out  # the unchanged bytes are skipped
    after = {
        r["path"]: r
        for r in _sql(home, "select path, rows_loaded, rows_quarantined, checksum from ops.batches")
    }
    assert after[same] == before[same]
    fixed = after[corrected]
    assert fixed["rows_quarantined"] == 0 and fixed["checksum"] != before[corrected]["checksum"]
    assert (
        fixed["rows_loaded"]
        == before[corrected]["rows_loaded"] + before[corrected]["rows_quarantined"]
    )
    left = _sql(home, f"select count(*) as n from ops.quarantine where path = '{corrected}'")
    assert left[0]["n"] == 0
    # The raw layer is not published: read the build database (no run is in progress).
    con = duckdb.connect(str(home / "build" / "warehouse.duckdb"), read_only=True)
    n, ids = con.execute(
        "select count(*), count(distinct setl_id) from raw.setl where _batch_path = $p",
        {"p": corrected},
    ).fetchall()[0]
    con.close()
    assert n == ids == fixed["rows_loaded"]


def test_every_record_of_a_small_delivery_is_loaded_or_quarantined(tmp_path):
    counts = generate(tmp_path, "small", "2024-01:2024-02")
    con = duckdb.connect(str(tmp_path / "build.duckdb"), config={"threads": 2})
    report = ingest(con, tmp_path / "landing", tmp_path / "scratch", b"k")
    assert report.rejected and all(
        b.rows_read == b.rows_loaded + b.rows_quarantined for b in report.batches
    )
    read = dict(
        con.execute(
            "select feed, sum(rows_read) from ops.batches where outcome <> 'rejected' group by 1"
        ).fetchall()
    )
    # Records of the one rejected batch (a missing column) were never read: count them apart.
    unread = {}
    for b in report.rejected:
        unread[b.path.split("/")[0]] = pacsv.read_csv(tmp_path / "landing" / b.path).num_rows
    for feed, n in counts.items():
        assert read.get(feed, 0) + unread.get(feed, 0) == n, feed
    loaded = {
        feed: con.execute(f"select count(*) from raw.{feed}").fetchall()[0][0] for feed in counts
    }
    quarantined = dict(
        con.execute(
            "select split_part(path, '/', 1), count(*) from ops.quarantine group by 1"
        ).fetchall()
    )
    for feed in counts:
        assert loaded[feed] + quarantined.get(feed, 0) == read.get(feed, 0), feed
