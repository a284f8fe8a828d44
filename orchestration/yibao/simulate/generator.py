"""Synthetic source extracts in the landing layout of the source contract.

Enrollment, population, settlements with their fee lines and later reversals,
institutions, practitioners, the fund ledger, supervision cases and recoveries,
for the prefectures of `regions.csv`, calibrated to the published figures of
`calibration.py`. Planted defects so far: duplicate enrollment (ground truth in
`<home>/truth`). Everything is vectorised with NumPy and Arrow: no Python loop
per row.
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

from yibao.simulate import claims
from yibao.simulate.people import Enrollments

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

    # Claims draw from their own stream: enrollment stays the same whatever they do.
    claims_rng = np.random.default_rng([seed, 1])
    institutions = {
        code: claims.make_institutions(claims_rng, code, len(e)) for code, e in per_region.items()
    }
    world = _World(periods, institutions, landing)

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
            world.settle(claims_rng, enrolled, active, code, k)

    for feed, n in world.write(claims_rng, landing).items():
        counts[feed] = n

    truth.mkdir(parents=True, exist_ok=True)
    if duplicates:
        pacsv.write_csv(pa.concat_tables(duplicates), truth / "defects.csv")
    return counts


# Fund income over benefit expenditure and months of reserve at the start, per fund
# (2024 bulletin: UEBMI pooled 17,342/13,223 and 30,446 cumulative; personal accounts
# 6,390/5,880 and 14,472; resident 11,181/10,661 and ~8,183; maternity assumed).
FUND_INCOME_RATIO = {"310_pool": 1.31, "310_acct": 1.087, "390": 1.049, "510": 1.05}
FUND_RESERVE_MONTHS = {"310_pool": 27.6, "310_acct": 29.5, "390": 9.2, "510": 6.0}
# Resident fund income: individual contributions ~37%, fiscal subsidy ~63% (2024 rates
# of 400 and 670 yuan a head).
RESIDENT_SUBSIDY_SHARE = 0.63
ANNUAL_INTEREST = 0.015  # assumed deposit rate of fund balances
# Recovered funds: 16.13 billion yuan in H1 2025 over ~1.33 billion insured, about 2 yuan
# per insured person per month; 80% of the involved amount is recovered (assumed).
RECOVERED_PER_INSURED_MONTH = 2.03
RECOVERED_SHARE = 0.8
CASE_MEDIAN_INVOLVED = 20_000
CASE_SIGMA = 0.8
CASE_SOURCES = {
    "smart_monitoring": 0.30, "routine": 0.30, "special_campaign": 0.15,
    "flight_inspection": 0.05, "self_inspection": 0.15, "report": 0.05,
}  # fmt: skip
VIOLATIONS = ["fictitious_hospitalisation", "split_charging", "over_treatment",
              "excluded_item_billed", "upcoding", "data_quality"]  # fmt: skip
ACTIONS = ["none", "warning", "agreement_suspended", "agreement_terminated", "referred_police"]


class _World:
    """Writes each region-month's settlements as it goes (one region-month in memory at a
    time), then the institutions, the fund ledger and the supervision feeds."""

    def __init__(self, periods: list[date], institutions: dict, landing: Path) -> None:
        self.periods = periods
        self.institutions = institutions
        self.landing = landing
        self.insured: dict[tuple[str, int], int] = {}
        self.spent: list[pa.Table] = []
        self.counts = {"setl": 0, "fee_list": 0}
        self.serial = 1

    def _emit(self, cols: dict, lines: dict, k: int, batch: str) -> None:
        """One batch per treatment region: the sending platform is where care was given."""
        month = self.periods[k]
        for treat in np.unique(cols["mdtrtarea_admvs"]):
            here = cols["mdtrtarea_admvs"] == treat
            line_here = np.isin(lines["setl_id"], cols["setl_id"][here])
            for feed, table in (
                ("setl", claims.setl_table({n: c[here] for n, c in cols.items()})),
                ("fee_list", claims.fee_table({n: c[line_here] for n, c in lines.items()})),
            ):
                folder = self.landing / feed / f"period={month:%Y-%m}" / f"admdvs={treat}"
                _write_csv(table, folder / f"{feed}-{treat}-{month:%Y%m}-{batch}.csv")
                self.counts[feed] += table.num_rows
        self.spent.append(_spending(cols, k))

    def settle(self, rng, enrolled: Enrollments, active: np.ndarray, code: str, k: int) -> None:
        basic = active & np.isin(enrolled.insutype, ["310", "390"])
        self.insured[(code, k)] = int(basic.sum())
        persons = enrolled.take(np.flatnonzero(basic))
        month = self.periods[k]
        next_month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        cols, self.serial = claims.settlements(
            rng,
            persons,
            code,
            np.datetime64(month, "D"),
            (next_month - month).days,
            self.institutions,
            self.serial,
        )
        lines = claims.fee_lines(rng, cols)
        lag, rev, rev_lines, self.serial = claims.reversals(rng, cols, lines, self.serial)
        self._emit(cols, lines, k, f"from{code}")
        for months_later in np.unique(lag):
            target = k + int(months_later)
            if target >= len(self.periods):
                continue  # arrives after the simulated window
            here = lag == months_later
            line_here = np.isin(rev_lines["setl_id"], rev["setl_id"][here])
            self._emit(
                {n: c[here] for n, c in rev.items()},
                {n: c[line_here] for n, c in rev_lines.items()},
                target,
                f"from{code}-reversals-of-{month:%Y%m}",
            )

    def write(self, rng, landing: Path) -> dict[str, int]:
        counts = {**self.counts, "fixmedins": 0, "practitioner": 0}
        for code, inst in self.institutions.items():
            for month in self.periods:
                for feed, table in (
                    ("fixmedins", inst.table(f"{month:%Y-%m}")),
                    ("practitioner", inst.practitioners()),
                ):
                    folder = landing / feed / f"period={month:%Y-%m}" / f"admdvs={code}"
                    _write_csv(table, folder / f"{feed}-{code}-{month:%Y%m}.csv")
                    counts[feed] += table.num_rows
        counts["fund_ledger"] = self._ledger(rng, landing, pa.concat_tables(self.spent))
        counts["supervision_case"], counts["fund_recovery"] = self._cases(rng, landing)
        return counts

    def _ledger(self, rng, landing: Path, spent: pa.Table) -> int:
        """Each fund's month: income follows the year's ratio to spending, balances chain."""
        sums = spent.group_by(["admdvs", "k", "fund_type"]).aggregate([("cents", "sum")])
        key = zip(*(sums.column(n).to_pylist() for n in ("admdvs", "k", "fund_type")), strict=True)
        spent_by = dict(zip(key, sums.column("cents_sum").to_pylist(), strict=True))
        names = ["bal_open", "inc_contrib", "inc_subsidy", "inc_interest", "inc_other",
                 "exp_benefit", "exp_other", "bal_close"]  # fmt: skip
        rows = 0
        for code in self.institutions:
            by_month: dict[int, list] = {k: [] for k in range(len(self.periods))}
            for fund, ratio in FUND_INCOME_RATIO.items():
                exp = np.array([spent_by.get((code, k, fund), 0) for k in range(len(self.periods))])
                mean = max(1, int(exp.mean()))
                balance = int(FUND_RESERVE_MONTHS[fund] * mean)
                income = (ratio * mean * rng.uniform(0.97, 1.03, len(exp))).astype(np.int64)
                subsidy_share = RESIDENT_SUBSIDY_SHARE if fund == "390" else 0.0
                for k in range(len(self.periods)):
                    subsidy = int(income[k] * subsidy_share)
                    contrib = int(income[k]) - subsidy
                    interest = int(balance * ANNUAL_INTEREST / 12)
                    exp_other = int(exp[k] * 0.005)
                    close = balance + contrib + subsidy + interest - int(exp[k]) - exp_other
                    by_month[k].append(
                        (
                            fund,
                            [balance, contrib, subsidy, interest, 0, int(exp[k]), exp_other, close],
                        )
                    )
                    balance = close
            for k, records in by_month.items():
                month = self.periods[k]
                amounts = np.array([r[1] for r in records], dtype=np.int64)
                table = pa.table(
                    {
                        "admdvs": [code] * len(records),
                        "period": [f"{month:%Y-%m}"] * len(records),
                        "fund_type": [r[0] for r in records],
                        **{n: claims.cents_text(amounts[:, i]) for i, n in enumerate(names)},
                    }
                )
                folder = landing / "fund_ledger" / f"period={month:%Y-%m}" / f"admdvs={code}"
                _write_csv(table, folder / f"ledger-{code}-{month:%Y%m}.csv")
                rows += table.num_rows
        return rows

    def _cases(self, rng, landing: Path) -> tuple[int, int]:
        n_cases = n_recoveries = 0
        last = len(self.periods) - 1
        for (code, k), insured in sorted(self.insured.items()):
            month = self.periods[k]
            # Expected cases so that recoveries match the per-capita figure (lognormal mean).
            mean_involved = CASE_MEDIAN_INVOLVED * np.exp(CASE_SIGMA**2 / 2)
            lam = insured * RECOVERED_PER_INSURED_MONTH / (RECOVERED_SHARE * mean_involved)
            n = rng.poisson(lam)
            if n == 0:
                continue
            inst = self.institutions[code]
            hospitals = inst.code[inst.kind == "1"]
            sources = rng.choice(list(CASE_SOURCES), n, p=list(CASE_SOURCES.values()))
            involved = np.round(
                CASE_MEDIAN_INVOLVED * np.exp(0.8 * rng.standard_normal(n)) * 100
            ).astype(np.int64)
            recovered = np.round(involved * RECOVERED_SHARE).astype(np.int64)
            lag = rng.integers(0, 3, n)
            closed = k + lag <= last
            ids = np.char.add(f"C{code}{month:%Y%m}", np.char.zfill(np.arange(n).astype("U"), 4))
            open_date = np.datetime64(month, "D") + rng.integers(0, 28, n).astype("timedelta64[D]")
            close_month = (np.datetime64(month, "M") + lag).astype(
                "datetime64[D]"
            ) + np.timedelta64(27, "D")
            fines = np.where(rng.random(n) < 0.3, involved, 0)
            cases = ~(sources == "self_inspection")
            case_table = pa.table({
                "case_id": ids[cases], "admdvs": np.full(cases.sum(), code),
                "fixmedins_code": hospitals[rng.integers(0, len(hospitals), n)][cases],
                "case_source": sources[cases],
                "violation_type": rng.choice(VIOLATIONS, n)[cases],
                "open_date": np.datetime_as_string(open_date)[cases],
                "close_date": pa.array(
                    np.datetime_as_string(close_month)[cases], mask=~closed[cases]
                ),
                "involved_amt": claims.cents_text(involved[cases]),
                "fine_amt": claims.cents_text(fines[cases]),
                "action": rng.choice(ACTIONS, n)[cases],
                "status": np.where(closed, "closed", "open")[cases],
            })  # fmt: skip
            if case_table.num_rows:
                _write_csv(
                    case_table,
                    landing
                    / "supervision_case"
                    / f"period={month:%Y-%m}"
                    / f"admdvs={code}"
                    / f"cases-{code}-{month:%Y%m}.csv",
                )
                n_cases += case_table.num_rows
            for later in np.unique(lag[closed]):
                sel = closed & (lag == later)
                rec_month = self.periods[k + int(later)]
                rec = pa.table({
                    "recovery_id": np.char.add("R", ids[sel]),
                    "case_id": pa.array(ids[sel], mask=(sources[sel] == "self_inspection")),
                    "admdvs": np.full(sel.sum(), code),
                    "fixmedins_code": hospitals[rng.integers(0, len(hospitals), sel.sum())],
                    "recovered_date": np.datetime_as_string(close_month[sel]),
                    "recovered_amt": claims.cents_text(recovered[sel]),
                })  # fmt: skip
                _write_csv(
                    rec,
                    landing
                    / "fund_recovery"
                    / f"period={rec_month:%Y-%m}"
                    / f"admdvs={code}"
                    / f"recovery-{code}-{month:%Y%m}-{rec_month:%Y%m}.csv",
                )
                n_recoveries += rec.num_rows
        return n_cases, n_recoveries


def _spending(cols: dict[str, np.ndarray], k: int) -> pa.Table:
    """Benefit expenditure by insured region and fund, in cents (net of reversals)."""
    t = cols["insutype"]
    parts = [
        ("310_pool", np.where(t == "310", cols["hifp_pay"] + cols["hifob_pay"], 0)),
        ("310_acct", np.where(np.isin(t, ["310", "510"]), cols["acct_pay"], 0)),
        ("390", np.where(t == "390", cols["hifp_pay"] + cols["hifmi_pay"], 0)),
        ("510", np.where(t == "510", cols["hifp_pay"], 0)),
    ]
    n = len(t)
    return pa.table({
        "admdvs": np.concatenate([cols["insuplc_admdvs"]] * len(parts)),
        "k": np.full(n * len(parts), k),
        "fund_type": np.concatenate([np.full(n, name) for name, _ in parts]),
        "cents": np.concatenate([v for _, v in parts]).astype(np.int64),
    })  # fmt: skip
