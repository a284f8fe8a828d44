import csv
import json
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from yibao.simulate import claims
from yibao.simulate.defects import parse_overrides
from yibao.simulate.generator import (
    Batches,
    generate,
    id_check_digits,
    load_regions,
    month_range,
    resend,
)
from yibao.simulate.people import distinct


def _gb11643_ok(certno: str) -> bool:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(certno[:17], weights, strict=True))
    return "10X98765432"[total % 11] == certno[17]


def test_check_digit_of_a_published_example():
    # The worked example of GB 11643-1999: 11010519491231002X.
    assert id_check_digits(np.array(["11010519491231002"]))[0] == "X"


def test_counting_unique_and_ids_equal_their_plain_forms():
    """The generator's fast forms of np.unique and of the id text give the same values."""
    rng = np.random.default_rng(5)
    for values in (
        rng.choice([110101, 110102, 650100, 440300], 5000).astype(np.int32),
        rng.integers(0, 3, 100),
        np.array([], dtype=np.int64),
        np.array([-5, 3, -5]),  # negative: np.unique itself
        np.array([0, 1 << 30]),  # too wide a range to count: np.unique itself
    ):
        want, want_at = np.unique(values, return_inverse=True)
        got, got_at = distinct(values, return_inverse=True)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got_at, want_at)
        np.testing.assert_array_equal(distinct(values), np.unique(values))
    serial = np.array([0, 7, 12345, 10**15 - 1, 10**15])
    assert claims.ids("S", serial[:4]).to_pylist() == [
        "S000000000000000", "S000000000000007", "S000000000012345", "S999999999999999",
    ]  # fmt: skip
    assert claims.ids("M", serial).to_pylist()[-1] == "M1000000000000000"
    inst = claims.institution_codes(np.array([11010100001, 5]), np.array([False, True]))
    assert inst.to_pylist() == ["H11010100001", "P5"]
    doctors = claims.doctor_codes(np.array([110101, 650100, 99]), np.array([7, 999_999, 3]))
    assert doctors.to_pylist() == ["D110101000007", "D650100999999", "D99000003"]


def test_month_range_inclusive_and_across_years():
    assert month_range("2023-11:2024-02") == [
        date(2023, 11, 1),
        date(2023, 12, 1),
        date(2024, 1, 1),
        date(2024, 2, 1),
    ]
    with pytest.raises(ValueError, match="YYYY|2024-01"):
        month_range("2024/01")
    with pytest.raises(ValueError, match="ends before"):
        month_range("2024-03:2024-01")


def test_every_province_has_its_pooling_regions_and_population():
    regions = load_regions()
    provinces = {r.admdvs: r for r in regions if r.level == "province"}
    assert len(provinces) == 31
    assert all(len(code) == 6 and code.endswith("0000") for code in provinces)
    # 2024 year-end resident population of the 31 provinces: 140,828 万 (NBS, 2025).
    assert abs(sum(r.resident_pop for r in provinces.values()) - 1_408_280_000) < 0.01 * 1.4e9
    prefectures = [r for r in regions if r.level == "prefecture"]
    # Every prefecture-level division (333) and municipality (4), and the 20 county-level
    # units that report directly to a province (省直辖县级: Hainan, Hubei, Henan).
    assert len(prefectures) == 357
    assert sum(r.admdvs[2:4] == "90" for r in prefectures) == 20
    assert {r.parent for r in prefectures} == set(provinces)
    total = Counter()
    for r in prefectures:
        assert r.admdvs[:2] + "0000" == r.parent and len(r.admdvs) == 6 and r.admdvs.isdigit()
        assert 0 < r.resident_pop <= provinces[r.parent].resident_pop
        total[r.parent] += r.resident_pop
    # Apportioned by the 2020 census: a province's regions add up to it exactly.
    assert total == Counter({code: r.resident_pop for code, r in provinces.items()})
    core = [r for r in prefectures if r.core]
    assert len(core) == 36 and {r.parent for r in core} == set(provinces)
    # The warehouse carries the same divisions as its own seed.
    seed_path = Path(__file__).parents[2] / "dbt_project" / "seeds" / "regions.csv"
    seed = {row["admdvs"] for row in csv.DictReader(seed_path.read_text("utf-8").splitlines())}
    assert {r.admdvs for r in regions} <= seed


def test_plain_csv_sample_follows_the_landing_layout(home):
    counts = generate(home, "tiny", "2024-01:2024-02", ["37", "44"], seed=7, fmt="csv")
    files = sorted(
        p.relative_to(home / "landing").as_posix() for p in (home / "landing").rglob("*.csv")
    )
    assert "population/period=2024-01/admdvs=100000/pop-2024.csv" in files
    assert "psn_insu/period=2024-02/admdvs=440300/psn_insu-440300-202402.csv" in files
    assert "setl/period=2024-02/admdvs=370100/setl-370100-202402.csv" in files
    first = pacsv.read_csv(
        home / "landing/psn_insu/period=2024-01/admdvs=370100/psn_insu-370100-202401.csv"
    )
    assert first.num_rows > 100
    assert all(_gb11643_ok(str(c)) for c in first.column("certno").to_pylist())
    assert counts["psn_insu"] == sum(
        pacsv.read_csv(p).num_rows for p in (home / "landing/psn_insu").rglob("*.csv")
    )
    assert not list((home / "landing").rglob("*.part"))


def test_same_seed_same_bytes(tmp_path):
    generate(tmp_path / "a", "tiny", "2024-01:2024-02", ["37", "11"], seed=1)
    generate(tmp_path / "b", "tiny", "2024-01:2024-02", ["37", "11"], seed=1)
    a_files = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    b_files = sorted(
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file()
    )
    assert a_files == b_files and len(a_files) > 30
    for rel in a_files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    generate(tmp_path / "c", "tiny", "2024-01:2024-02", ["37", "11"], seed=2)
    other = (tmp_path / "c" / "truth" / "defects.csv").read_bytes()
    assert other != (tmp_path / "a" / "truth" / "defects.csv").read_bytes()


def _plain(table: pa.Table) -> pa.Table:
    """Dictionary columns decoded: each row group of a file has a dictionary of its own."""
    return pa.table(
        {  # decoded: `equals` would not match chunks whose dictionaries differ
            name: col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col
            for name, col in zip(table.column_names, table.columns, strict=True)
        }
    )


def test_parquet_rows_do_not_depend_on_how_the_writers_are_fed(tmp_path, monkeypatch):
    """The writer threads copy, buffer and write in an order set by the queue and buffer
    bounds; the rows of every file must not depend on them (nor on the number of writers)."""
    args = ("tiny", "2024-01:2024-02", ["37", "11"])
    counts = generate(tmp_path / "a", *args, seed=3, fmt="parquet")
    monkeypatch.setattr(Batches, "WRITERS", 3)
    monkeypatch.setattr(Batches, "FLUSH_ROWS", 97)
    monkeypatch.setattr(Batches, "BUDGET_ROWS", 500)
    monkeypatch.setattr(Batches, "QUEUE_ROWS", 300)  # the drawing thread waits often
    assert generate(tmp_path / "b", *args, seed=3, fmt="parquet") == counts
    json.dumps(counts)  # plain ints: the bench writes them into its report
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.parquet"))
    assert files == sorted(
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.parquet")
    )
    rows, groups = Counter(), Counter()
    for rel in files:
        a, b = (_plain(pq.ParquetFile(tmp_path / home / rel).read()) for home in ("a", "b"))
        assert a.equals(b), rel
        rows[rel.parts[1]] += a.num_rows
        for home in ("a", "b"):
            groups[home] += pq.ParquetFile(tmp_path / home / rel).metadata.num_row_groups
    assert groups["b"] > groups["a"], "the small flushes must have written other row groups"
    assert rows == Counter({feed: n for feed, n in counts.items() if n}), rows
    assert not list(tmp_path.rglob("*.part"))


def test_unknown_province_and_defect_are_clear_errors(home):
    with pytest.raises(ValueError, match="province code"):
        generate(home, "tiny", "2024-01:2024-01", ["99"])
    with pytest.raises(ValueError, match="unknown defect 'nope'"):
        parse_overrides(["nope=0.1"])
    with pytest.raises(ValueError, match="between 0 and 1"):
        parse_overrides(["gzip=2"])
    assert parse_overrides(["gzip=0"])["gzip"] == 0.0


def test_resend_delivers_the_outbox_under_the_same_paths(home):
    generate(home, "tiny", "2024-01:2024-02", ["37", "44"], seed=3)
    truth = pacsv.read_csv(home / "truth" / "defects.csv").to_pylist()
    waiting = {r["batch"]: r["defect_type"] for r in truth if r["defect_type"].startswith("resent")}
    assert sorted(waiting.values()) == ["resent_corrected", "resent_unchanged"]
    before = {rel: (home / "landing" / rel).read_bytes() for rel in waiting}
    sent = resend(home)
    assert sorted(sent) == sorted(waiting)
    for rel, kind in waiting.items():
        after = (home / "landing" / rel).read_bytes()
        assert (after == before[rel]) == (kind == "resent_unchanged"), rel
    assert resend(home) == []
