from datetime import date

import numpy as np
import pyarrow.csv as pacsv
import pytest

from yibao.simulate.generator import generate, id_check_digits, month_range


def _gb11643_ok(certno: str) -> bool:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(certno[:17], weights, strict=True))
    return "10X98765432"[total % 11] == certno[17]


def test_check_digit_of_a_published_example():
    # The worked example of GB 11643-1999: 11010519491231002X.
    assert id_check_digits(np.array(["11010519491231002"]))[0] == "X"


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


def test_tiny_sample_follows_the_landing_layout(home):
    counts = generate(home, "tiny", "2024-01:2024-02", ["37", "44"], seed=7)
    files = sorted(
        p.relative_to(home / "landing").as_posix() for p in (home / "landing").rglob("*.csv")
    )
    assert "population/period=2024-01/admdvs=100000/pop-2024.csv" in files
    assert "psn_insu/period=2024-02/admdvs=440300/psn_insu-440300-202402.csv" in files
    first = pacsv.read_csv(
        home / "landing/psn_insu/period=2024-01/admdvs=370100/psn_insu-370100-202401.csv"
    )
    assert first.num_rows > 100
    certnos = first.column("certno").to_pylist()
    assert all(_gb11643_ok(str(c)) for c in certnos)
    assert counts["psn_insu"] == sum(
        pacsv.read_csv(p).num_rows for p in (home / "landing/psn_insu").rglob("*.csv")
    )
    truth = pacsv.read_csv(home / "truth" / "defects.csv")
    assert set(truth.column("defect_type").to_pylist()) == {"duplicate_enrollment"}


def test_same_seed_same_bytes(tmp_path):
    generate(tmp_path / "a", "tiny", "2024-01:2024-02", ["37"], seed=1)
    generate(tmp_path / "b", "tiny", "2024-01:2024-02", ["37"], seed=1)
    for path in (tmp_path / "a").rglob("*.csv"):
        twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
        assert twin.read_bytes() == path.read_bytes()


def test_unknown_province_is_a_clear_error(home):
    with pytest.raises(ValueError, match="province code"):
        generate(home, "tiny", "2024-01:2024-01", ["99"])
