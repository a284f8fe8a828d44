"""Synthetic source extracts in the landing layout of the source contract.

This first cut writes the enrollment (`psn_insu`) and population feeds for a
few prefectures; the full simulator (all nine feeds, calibration, defects) grows
from here. Everything is vectorised with NumPy and Arrow: no Python loop per row.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

# Persons simulated per resident, by tier. tiny keeps CI in seconds.
SCALE_FRACTION = {"tiny": 5e-5, "small": 2e-4, "medium": 2e-3, "large": 1e-2}
# Share of residents insured: 2024 bulletin, 1.327 billion insured, ~95% of residents.
COVERAGE_TARGET = 0.95
# Employee scheme (310) share of the insured: 37,948 万 of 132,662 万 in 2024 (bulletin).
EMPLOYEE_SHARE = 0.286
# Monthly churn of the simulator (not calibrated yet): terminations and new enrollments.
MONTHLY_TERMINATION = 0.004
MONTHLY_NEW = 0.005
# Share of persons enrolled a second time in another region (duplicate enrollment).
DUPLICATE_RATE = 0.01
# Residents aged 18 and over: about 80% (7th census, 2020).
ADULT_SHARE = 0.8

_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_ID_CHECK = np.array(list("10X98765432"))
_SURNAMES = np.array(list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"))
_GIVEN = np.array(list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"))


@dataclass(frozen=True)
class Region:
    admdvs: str
    name_zh: str
    name_en: str
    level: str
    parent: str
    resident_pop: int | None


def load_regions() -> list[Region]:
    text = resources.files("yibao.simulate").joinpath("regions.csv").read_text("utf-8")
    rows = csv.DictReader(text.splitlines())
    return [
        Region(
            r["admdvs"],
            r["name_zh"],
            r["name_en"],
            r["level"],
            r["parent"],
            int(r["resident_pop_2024"]) if r["resident_pop_2024"] else None,
        )
        for r in rows
    ]


def month_range(spec: str) -> list[date]:
    """'2024-01:2024-03' -> first days of each month, inclusive."""
    try:
        start_s, end_s = spec.split(":")
        start = date.fromisoformat(start_s + "-01")
        end = date.fromisoformat(end_s + "-01")
    except ValueError as exc:
        raise ValueError(f"--months must look like 2024-01:2024-03, got {spec!r}") from exc
    if end < start:
        raise ValueError(f"--months ends before it starts: {spec!r}")
    months = []
    current = start
    while current <= end:
        months.append(current)
        current = date(current.year + current.month // 12, current.month % 12 + 1, 1)
    return months


def id_check_digits(first17: np.ndarray) -> np.ndarray:
    """GB 11643 check character for an array of 17-digit strings."""
    digits = np.frombuffer("".join(first17).encode("ascii"), dtype=np.uint8) - ord("0")
    digits = digits.reshape(len(first17), 17)
    return _ID_CHECK[(digits * _ID_WEIGHTS).sum(axis=1) % 11]


@dataclass
class Enrollments:
    """Columns of the enrollment population, one entry per person × region."""

    psn_no: np.ndarray
    certno: np.ndarray
    psn_name: np.ndarray
    gend: np.ndarray
    brdy: np.ndarray  # datetime64[D]
    insutype: np.ndarray
    psn_type: np.ndarray
    psn_insu_date: np.ndarray  # datetime64[D]
    admdvs: np.ndarray

    def __len__(self) -> int:
        return len(self.psn_no)

    def take(self, idx: np.ndarray) -> Enrollments:
        return Enrollments(**{k: v[idx] for k, v in self.__dict__.items()})


def _psn_numbers(admdvs: str, first: int, n: int) -> np.ndarray:
    return np.char.add(admdvs[:2], np.char.zfill(np.arange(first, first + n).astype("U"), 14))


def _concat(a: Enrollments, b: Enrollments) -> Enrollments:
    return Enrollments(**{k: np.concatenate([v, getattr(b, k)]) for k, v in a.__dict__.items()})


def _persons(rng: np.random.Generator, admdvs: str, n: int, serial0: int, first: date):
    gend = rng.choice(np.array(["1", "2"]), n)
    age_days = rng.integers(0, 90 * 365, n)
    brdy = np.datetime64(first, "D") - age_days
    seq = rng.integers(0, 1000, n)
    # The third-from-last digit of a resident ID is odd for men, even for women.
    seq = seq - seq % 2 + (gend == "1")
    body = np.char.add(
        np.char.add(admdvs, np.datetime_as_string(brdy).astype("U10")),
        np.char.zfill(seq.astype("U3"), 3),
    )
    body = np.char.replace(body, "-", "")
    certno = np.char.add(body, id_check_digits(body))
    names = np.char.add(
        rng.choice(_SURNAMES, n), np.char.add(rng.choice(_GIVEN, n), rng.choice(_GIVEN, n))
    )
    psn_no = _psn_numbers(admdvs, serial0, n)
    # Only adults work: scale the employee share up over the ~80% of residents who are adults.
    adult = age_days >= 18 * 365
    employee = adult & (rng.random(n) < EMPLOYEE_SHARE / ADULT_SHARE)
    insutype = np.where(employee, "310", "390")
    retired = age_days > 60 * 365
    child = age_days < 18 * 365
    psn_type = np.where(
        employee, np.where(retired, "1102", "1101"), np.where(child, "1502", "1501")
    )
    insu_date = np.maximum(brdy, np.datetime64(first, "D") - rng.integers(30, 20 * 365, n))
    return Enrollments(
        psn_no, certno, names, gend, brdy, insutype, psn_type, insu_date, np.full(n, admdvs)
    )


def _timestamps(rng: np.random.Generator, month: date, n: int) -> np.ndarray:
    start = np.datetime64(month, "s")
    days = 28 * 86400
    return start + rng.integers(0, days, n).astype("timedelta64[s]")


def _table(e: Enrollments, stas: np.ndarray, paus: np.ndarray, updt: np.ndarray) -> pa.Table:
    return pa.table(
        {
            "psn_no": e.psn_no,
            "psn_cert_type": np.full(len(e), "01"),
            "certno": e.certno,
            "psn_name": e.psn_name,
            "gend": e.gend,
            "brdy": np.datetime_as_string(e.brdy),
            "insutype": e.insutype,
            "psn_type": e.psn_type,
            "psn_insu_stas": stas,
            "psn_insu_date": np.datetime_as_string(e.psn_insu_date),
            "paus_insu_date": pa.array(
                np.datetime_as_string(paus), mask=np.isnat(paus), type=pa.string()
            ),
            "insuplc_admdvs": e.admdvs,
            "updt_time": np.char.replace(np.datetime_as_string(updt), "T", " "),
        }
    )


def _write_csv(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    # One chunk: pyarrow 18 repeats the header after an empty leading record batch.
    pacsv.write_csv(table.combine_chunks(), tmp)
    tmp.replace(path)  # a reader never sees half a batch


def generate(
    home: Path,
    scale: str = "tiny",
    months: str = "2024-01:2024-03",
    provinces: list[str] | None = None,
    seed: int = 20240101,
) -> dict[str, int]:
    """Write the landing files and the ground truth; return row counts per feed."""
    if scale not in SCALE_FRACTION:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALE_FRACTION)}")
    periods = month_range(months)
    regions = load_regions()
    wanted = set(provinces or {r.admdvs[:2] for r in regions if r.level == "province"})
    known = {r.admdvs[:2] for r in regions if r.level == "province"}
    unknown = wanted - known
    if unknown:
        raise ValueError(
            f"no regions known for province code(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(known))}"
        )
    prefectures = [r for r in regions if r.level == "prefecture" and r.admdvs[:2] in wanted]
    rng = np.random.default_rng(seed)
    fraction = SCALE_FRACTION[scale]
    landing, truth = home / "landing", home / "truth"
    counts = {"psn_insu": 0, "population": 0}

    # Residents of the simulated world: the denominator scales with the sample.
    pop = pa.table(
        {
            "admdvs": [r.admdvs for r in prefectures],
            "year": [str(periods[0].year)] * len(prefectures),
            "resident_pop": [max(1, round(r.resident_pop * fraction)) for r in prefectures],
        }
    )
    for year in sorted({p.year for p in periods}):
        year_pop = pop.set_column(1, "year", pa.array([str(year)] * len(prefectures)))
        _write_csv(
            year_pop,
            landing / "population" / f"period={year}-01" / "admdvs=100000" / f"pop-{year}.csv",
        )
        counts["population"] += year_pop.num_rows

    per_region: dict[str, Enrollments] = {}
    serial = 1
    for r in prefectures:
        n = round(r.resident_pop * fraction * COVERAGE_TARGET)
        per_region[r.admdvs] = _persons(rng, r.admdvs, n, serial, periods[0])
        serial += n

    # Duplicate enrollment: the same certificate enrolled again in another region.
    codes = list(per_region)
    duplicates = []
    if len(codes) > 1:
        for i, code in enumerate(codes):
            src = per_region[codes[(i + 1) % len(codes)]]
            pick = np.flatnonzero(rng.random(len(src)) < DUPLICATE_RATE)
            dup = src.take(pick)
            dup.psn_no = _psn_numbers(code, serial, len(dup))
            serial += len(dup)
            dup.admdvs = np.full(len(dup), code)
            dup.insutype = np.full(len(dup), "390")
            dup.psn_type = np.where(dup.psn_type == "1502", "1502", "1501")
            per_region[code] = _concat(per_region[code], dup)
            duplicates.append(
                pa.table(
                    {
                        "feed": np.full(len(dup), "psn_insu"),
                        "key": dup.psn_no,
                        "defect_type": np.full(len(dup), "duplicate_enrollment"),
                    }
                )
            )

    for code, enrolled in per_region.items():
        active = np.ones(len(enrolled), dtype=bool)
        for k, month in enumerate(periods):
            path = landing / "psn_insu" / f"period={month:%Y-%m}" / f"admdvs={code}"
            if k == 0:  # first period of a region: full load
                rows = enrolled.take(np.arange(len(enrolled)))
                table = _table(
                    rows,
                    np.full(len(rows), "1"),
                    np.full(len(rows), np.datetime64("NaT"), dtype="datetime64[D]"),
                    _timestamps(rng, month, len(rows)),
                )
            else:
                stop = np.flatnonzero(active & (rng.random(len(enrolled)) < MONTHLY_TERMINATION))
                active[stop] = False
                ended = enrolled.take(stop)
                updt = _timestamps(rng, month, len(stop))
                paus = updt.astype("datetime64[D]")
                terminated = _table(ended, np.full(len(stop), "4"), paus, updt)
                n_new = rng.binomial(len(enrolled), MONTHLY_NEW)
                new = _persons(rng, code, n_new, serial, month)
                serial += n_new
                new.psn_insu_date = np.full(n_new, np.datetime64(month, "D"))
                enrolled = _concat(enrolled, new)
                active = np.concatenate([active, np.ones(n_new, dtype=bool)])
                joined = _table(
                    new,
                    np.full(n_new, "1"),
                    np.full(n_new, np.datetime64("NaT"), dtype="datetime64[D]"),
                    _timestamps(rng, month, n_new),
                )
                table = pa.concat_tables([terminated, joined])
            _write_csv(table, path / f"psn_insu-{code}-{month:%Y%m}.csv")
            counts["psn_insu"] += table.num_rows

    truth.mkdir(parents=True, exist_ok=True)
    if duplicates:
        pacsv.write_csv(pa.concat_tables(duplicates), truth / "defects.csv")
    return counts
