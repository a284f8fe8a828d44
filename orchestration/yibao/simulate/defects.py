"""Planted defects and their ground truth.

Each defect has a rate (settable with `yibao generate --defect NAME=RATE`) and every
planted instance is written to `<home>/truth/defects.csv` as feed, key, defect type
and, for defects of a delivered file, the batch's path. The normal population is
built so that none of these patterns happens by chance (see `claims.visits`), so the
truth is exact: a rule that fires elsewhere is a false positive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from yibao.simulate import claims
from yibao.simulate.claims import CATALOGUE, MED_TYPES, diag_index, oprn_index

# Rates: per settlement unless noted. Chosen so that `small` holds dozens of each.
RATES = {
    # data quality, inside records the door accepts
    "sex_conflict": 0.0008,
    "age_conflict": 0.0008,
    "unregistered_practitioner": 0.0008,
    "amount_identity_broken": 0.0005,
    "fee_lines_not_adding_up": 0.0005,
    "line_not_qty_x_price": 0.0005,
    "unknown_code": 0.0005,
    # abuse patterns for the rule base
    "repeat_imaging": 0.004,  # of eligible outpatient visits
    "los_over_limit": 0.02,  # of inpatient stays
    "excluded_item_billed": 0.001,
    "class_c_paid_by_fund": 0.001,
    "split_hospitalisation": 0.02,  # of inpatient stays
    "overlapping_stays": 0.01,  # of inpatient stays
    "high_frequency_visits": 0.0005,  # of general outpatient visits
    "after_agreement_end": 0.1,  # of visits to an institution after its agreement ended
    "no_bed_or_nursing": 0.01,  # of inpatient stays
    "duplicate_enrollment": 0.01,  # of persons
    # records the door must quarantine (rows of settlement batches)
    "missing_required": 0.0003,
    "unparsable_dec": 0.0003,
    "unparsable_date": 0.0003,
    "malformed_code": 0.0003,
    "future_timestamp": 0.0003,
    "outside_batch_month": 0.0003,
    "wrong_field_count": 0.0003,
    # delivery, per batch
    "gb18030": 0.10,
    "utf8_bom": 0.05,
    "crlf": 0.10,
    "gzip": 0.05,
    "parquet": 0.05,
}
# Imaging that is not a defect: one scan in a person's month, at most every six months.
IMAGING_SINGLE_RATE = 0.02
HIGH_FREQUENCY_EXTRA = 9  # visits added to a person's month (rule threshold: 8 in 30 days)
ROW_DEFECTS = ("missing_required", "unparsable_dec", "unparsable_date", "malformed_code",
               "future_timestamp", "outside_batch_month", "wrong_field_count")  # fmt: skip


def parse_overrides(items: list[str] | None) -> dict[str, float]:
    rates = dict(RATES)
    for item in items or []:
        name, _, value = item.partition("=")
        if name not in RATES:
            raise ValueError(f"unknown defect {name!r}; known: {', '.join(RATES)}")
        try:
            rate = float(value)
        except ValueError as exc:
            raise ValueError(f"--defect {item!r}: the rate must be a number") from exc
        if not 0 <= rate <= 1:
            raise ValueError(f"--defect {item!r}: the rate must be between 0 and 1")
        rates[name] = rate
    return rates


@dataclass
class Truth:
    """What was planted, gathered as small Arrow tables and written once at the end."""

    parts: list[pa.Table] = field(default_factory=list)

    def add(self, feed: str, keys, defect: str, batch: str | None = None) -> None:
        keys = keys if isinstance(keys, pa.Array) else pa.array(keys, pa.string())
        if len(keys) == 0:
            return
        n = len(keys)
        self.parts.append(
            pa.table(
                {
                    "feed": pa.array([feed] * n),
                    "key": keys.cast(pa.string()),
                    "defect_type": pa.array([defect] * n),
                    "batch": pa.array([batch] * n, pa.string()),
                }
            )
        )

    def rename_batches(self, renamed: dict[str, str]) -> None:
        if not renamed:
            return
        old = pa.array(list(renamed))
        new = pa.array(list(renamed.values()))
        out = []
        for t in self.parts:
            at = pc.index_in(t.column("batch"), value_set=old)
            batch = pc.coalesce(new.take(at), t.column("batch"))
            out.append(t.set_column(3, "batch", batch))
        self.parts = out

    def write(self, path: Path) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        schema = pa.schema([(n, pa.string()) for n in ("feed", "key", "defect_type", "batch")])
        table = pa.concat_tables(self.parts) if self.parts else schema.empty_table()
        pacsv.write_csv(table.sort_by([("defect_type", "ascending"), ("key", "ascending")]), path)
        return table.num_rows


def _pick(rng, candidates: np.ndarray, rate: float, used: np.ndarray) -> np.ndarray:
    idx = np.flatnonzero(candidates & ~used & (rng.random(len(used)) < rate))
    used[idx] = True
    return idx


def _one_per_person(idx: np.ndarray, persons: np.ndarray) -> np.ndarray:
    _, first = np.unique(persons[idx], return_index=True)
    return idx[np.sort(first)]


def _shift(cols: dict[str, np.ndarray], rows: np.ndarray, begin, los) -> dict[str, np.ndarray]:
    """Copies of `rows` moved to begin on `begin` for `los` days, settled at discharge."""
    out = claims.take(cols, rows)
    los = np.asarray(los, dtype=np.int64)
    out["begndate"] = begin
    out["enddate"] = begin + los.astype("timedelta64[D]")
    seconds = out["setl_time"] - out["setl_time"].astype("datetime64[D]").astype("datetime64[s]")
    out["setl_time"] = out["enddate"].astype("datetime64[s]") + seconds
    return out


@dataclass
class Plan:
    """Rows of one region-month chosen for line-level defects, by kind."""

    imaging: dict[str, np.ndarray] = field(default_factory=dict)
    lines: dict[str, np.ndarray] = field(default_factory=dict)


def plant_visits(
    rng: np.random.Generator,
    cols: dict[str, np.ndarray],
    k: int,
    month_end: np.datetime64,
    institutions: dict[int, claims.Institutions],
    rates: dict[str, float],
    serial0: int,
    truth: Truth,
) -> tuple[dict[str, np.ndarray], np.ndarray, Plan, int]:
    """Add the planted extra visits and mark the rows that carry a planted defect.

    Returns the settlement columns with the added rows, the planted mask (rows that must
    not be reversed), the plan for fee-line defects and the next free serial.
    """
    n = len(cols["serial"])
    used = cols["after_end"].copy()
    mt = MED_TYPES[cols["med_type"]]
    outpatient = np.isin(mt, ["11", "13"])
    inpatient = mt == "21"
    day = (
        cols["enddate"] - cols["enddate"].astype("datetime64[M]").astype("datetime64[D]")
    ).astype(np.int64)
    persons = cols["psn_serial"]
    # Added visits go only to institutions whose agreement runs past the month.
    valid = cols["agmt_end"] >= month_end
    plan = Plan()
    added: list[dict[str, np.ndarray]] = []

    # Imaging: single scans (not a defect) and repeats within 30 days, on disjoint persons.
    single = _one_per_person(
        _pick(rng, (outpatient | inpatient) & (persons % 6 == k % 6), IMAGING_SINGLE_RATE, used),
        persons,
    )
    first = _one_per_person(
        _pick(rng, outpatient & valid & (persons % 6 == (k + 3) % 6) & (day <= 18),
              rates["repeat_imaging"], used),
        persons,
    )  # fmt: skip
    gap = rng.integers(3, 10, len(first))
    repeat = _shift(cols, first, cols["enddate"][first] + gap.astype("timedelta64[D]"), 0)
    added.append(repeat)

    # Split hospitalisation: the same hospital readmits the person within days.
    stays = _pick(rng, inpatient & valid & (day <= 18), rates["split_hospitalisation"], used)
    again = rng.integers(1, 4, len(stays)).astype("timedelta64[D]")
    split = _shift(cols, stays, cols["enddate"][stays] + again, rng.integers(2, 6, len(stays)))
    split["medfee_sumamt"] = split["medfee_sumamt"] // 2
    added.append(split)

    # Overlapping stays: another hospital of the region bills a stay inside the first one.
    long_stays = inpatient & (day <= 25) & (cols["enddate"] - cols["begndate"] >= np.timedelta64(4))
    over = _pick(rng, long_stays & ~cols["pharmacy"], rates["overlapping_stays"], used)
    overlap = _shift(cols, over, cols["begndate"][over] + np.timedelta64(1, "D"), 2)
    for code in np.unique(overlap["treat"]):  # one step per region, not per row
        inst = institutions[int(code)]
        hospitals = inst.hospitals()
        at = np.flatnonzero(overlap["treat"] == code)
        mine = np.searchsorted(inst.serial, overlap["inst_serial"][at])
        # The first and third hospitals never lose their agreement (generator.py).
        other = np.where(mine == hospitals[0], hospitals[2], hospitals[0])
        overlap["inst_serial"][at] = inst.serial[other]
        overlap["level"][at] = np.minimum(inst.level[other], 2)
        overlap["doctor"][at] = inst.dr_start[other]
    added.append(overlap)

    # High-frequency visits: a person's month gets nine more general outpatient visits.
    frequent = _one_per_person(
        _pick(rng, (mt == "11") & valid & (day <= 27), rates["high_frequency_visits"], used),
        persons,
    )
    extra = np.repeat(frequent, HIGH_FREQUENCY_EXTRA)
    month_start = cols["enddate"][frequent].astype("datetime64[M]").astype("datetime64[D]")
    days = (month_end - month_start[0]).astype(np.int64) if len(frequent) else 28
    when = np.repeat(month_start, HIGH_FREQUENCY_EXTRA) + rng.integers(0, days, len(extra)).astype(
        "timedelta64[D]"
    )
    added.append(_shift(cols, extra, when, 0))

    sizes = [len(a["serial"]) for a in added]
    by_kind = dict(
        zip(["repeat", "split", "overlap", "frequent"], np.cumsum([0, *sizes[:-1]]), strict=True)
    )
    added = [a for a in added if len(a["serial"])]
    if added:
        extra_cols = claims.concat(added)
        m = len(extra_cols["serial"])
        extra_cols["serial"] = np.arange(serial0, serial0 + m, dtype=np.int64)
        extra_cols["mdtrt"] = extra_cols["serial"].copy()
        extra_cols["after_end"] = np.zeros(m, dtype=bool)
        claims.price(rng, extra_cols)
        serial0 += m
        cols = claims.concat([cols, extra_cols])
    used = np.concatenate([used, np.ones(len(cols["serial"]) - n, dtype=bool)])
    ids = claims.ids("S", cols["serial"])

    def added_rows(kind: str, count: int) -> np.ndarray:
        return n + by_kind[kind] + np.arange(count, dtype=np.int64)

    repeat_rows = added_rows("repeat", len(first))
    plan.imaging = {"single": single, "first": first, "repeat": repeat_rows}
    truth.add("setl", ids.take(pa.array(repeat_rows)), "repeat_imaging")
    if len(stays):
        truth.add(
            "setl", ids.take(pa.array(added_rows("split", len(stays)))), "split_hospitalisation"
        )
    if len(over):
        truth.add("setl", ids.take(pa.array(added_rows("overlap", len(over)))), "overlapping_stays")
    if len(frequent):
        truth.add(
            "setl",
            claims.psn_numbers(cols["psn_admdvs"][frequent], cols["psn_serial"][frequent]),
            "high_frequency_visits",
        )
    truth.add("setl", ids.filter(pa.array(cols["after_end"])), "after_agreement_end")

    # Record-level defects on rows of the original visits.
    rows = np.arange(len(cols["serial"]))
    original = rows < n
    inpatient_all = np.isin(MED_TYPES[cols["med_type"]], claims.INPATIENT_TYPES)
    for kind, candidates in (
        ("excluded_item_billed", original),
        ("class_c_paid_by_fund", original),
        ("unknown_code", original),
        ("fee_lines_not_adding_up", original),
        ("line_not_qty_x_price", original),
        ("no_bed_or_nursing", original & inpatient_all),
    ):
        plan.lines[kind] = _pick(rng, candidates, rates[kind], used)
        truth.add("setl", ids.take(pa.array(plan.lines[kind])), kind)

    age = (cols["enddate"] - cols["brdy"]).astype(np.int64) / 365.25
    male = cols["seq"] % 2 == 1
    visit = original & np.isin(MED_TYPES[cols["med_type"]], ["11", "21"])
    sex = _pick(rng, visit, rates["sex_conflict"], used)
    # Men: an ovarian cyst or a hysteroscopy; women: prostate cancer, BPH or a TURP.
    variant = rng.integers(0, 3, len(sex))
    man = male[sex]
    woman_diag = np.where(variant == 0, diag_index("C61.x00"), diag_index("N40.x00"))
    new_diag = np.where(man, diag_index("N83.200"), woman_diag)
    cols["diag"][sex] = np.where(
        (variant == 0) | (~man & (variant == 1)), new_diag, cols["diag"][sex]
    )
    cols["oprn"][sex] = np.select(
        [man & (variant > 0), ~man & (variant == 2)],
        [oprn_index("68.1200"), oprn_index("60.2900")],
        0,
    )
    truth.add("setl", ids.take(pa.array(sex)), "sex_conflict")

    older = _pick(rng, visit & (age >= 18), rates["age_conflict"], used)
    ivf = ~male[older] & (age[older] >= 56)
    cols["diag"][older] = np.where(ivf, diag_index("Z31.200"), diag_index("P07.300"))
    cols["oprn"][older] = 0
    truth.add("setl", ids.take(pa.array(older)), "age_conflict")

    unregistered = _pick(
        rng, original & ~cols["pharmacy"], rates["unregistered_practitioner"], used
    )
    cols["doctor"][unregistered] = claims.UNREGISTERED_SERIAL + rng.integers(
        0, 99_999, len(unregistered)
    )
    truth.add("setl", ids.take(pa.array(unregistered)), "unregistered_practitioner")

    broken = _pick(rng, original, rates["amount_identity_broken"], used)
    cols["fund_pay_sumamt"][broken] += rng.integers(1, 5_000, len(broken))
    truth.add("setl", ids.take(pa.array(broken)), "amount_identity_broken")

    too_long = _pick(
        rng, original & (MED_TYPES[cols["med_type"]] == "21"), rates["los_over_limit"], used
    )
    limit = claims.LOS_LIMIT[cols["diag"][too_long]]
    cols["begndate"][too_long] = cols["enddate"][too_long] - (
        limit + rng.integers(1, 6, len(too_long))
    ).astype("timedelta64[D]")
    truth.add("setl", ids.take(pa.array(too_long)), "los_over_limit")
    return cols, used, plan, serial0


def plant_lines(rng, lines: dict[str, np.ndarray], n_setl: int, plan: Plan) -> None:
    """Fee-line defects and imaging lines on the rows the plan chose (vectorised)."""
    owner = lines["setl_row"]
    n_lines = np.bincount(owner, minlength=n_setl)
    starts = np.concatenate([[0], np.cumsum(n_lines)[:-1]]).astype(np.int64)

    def line_of(rows: np.ndarray, position) -> np.ndarray:
        return starts[rows] + np.minimum(position, n_lines[rows] - 1)

    def set_item(at: np.ndarray, items: np.ndarray, selfpay: int | None = None) -> None:
        lines["item"][at] = items
        total = lines["det_item_fee_sumamt"][at]
        lines["cnt"][at] = 1
        lines["pric"][at] = total
        if selfpay is not None:
            lines["selfpay"][at] = selfpay

    # Imaging line: second line of a visit (third of a stay, after bed and nursing).
    kinds = np.array(["ct", "mri"])
    for name, rows in plan.imaging.items():
        if not len(rows):
            continue
        # A repeat uses the same modality as its first scan: both draw from the same stream.
        modality = kinds[(rows if name != "repeat" else plan.imaging["first"]) % 2]
        items = np.where(
            modality == "ct", claims.imaging_items("ct")[0], claims.imaging_items("mri")[0]
        )
        set_item(line_of(rows, 2), items, 0)
    p = plan.lines
    set_item(
        line_of(p["excluded_item_billed"], 99),
        rng.choice(claims.EXCLUDED, len(p["excluded_item_billed"])),
        0,
    )
    set_item(
        line_of(p["class_c_paid_by_fund"], 99),
        rng.choice(claims.CLASS_C, len(p["class_c_paid_by_fund"])),
        0,
    )
    set_item(
        line_of(p["unknown_code"], 99), np.full(len(p["unknown_code"]), claims.UNKNOWN_ITEM), 2
    )
    exam = np.flatnonzero(CATALOGUE.item_type == "04")
    for position in (0, 1):
        rows = p["no_bed_or_nursing"]
        set_item(starts[rows] + position, rng.choice(exam, len(rows)), 0)
    at = line_of(p["fee_lines_not_adding_up"], 99)
    lines["det_item_fee_sumamt"][at] += rng.integers(100, 10_000, len(at))
    lines["cnt"][at] = 1
    lines["pric"][at] = lines["det_item_fee_sumamt"][at]
    at = line_of(p["line_not_qty_x_price"], 99)
    lines["cnt"][at] = 2
    lines["pric"][at] = lines["det_item_fee_sumamt"][at] // 2 + 1


def corrupt_rows(
    rng, table: pa.Table, month_start: np.datetime64, rates: dict[str, float], force=None
) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """Values the door must quarantine, in settlements (all columns text).

    force: rows among which at least one defect must be planted (a missing required value
    when the rates drew none there).
    """
    n = table.num_rows
    used = np.zeros(n, dtype=bool)
    picked = {kind: _pick(rng, np.ones(n, dtype=bool), rates[kind], used) for kind in ROW_DEFECTS}
    if force is not None and len(force) and not used[force].any():
        picked["missing_required"] = np.sort(np.append(picked["missing_required"], force[0]))
    before = str((month_start - np.timedelta64(1, "D")).astype("datetime64[D]"))
    edits = {
        "missing_required": ("insutype", None),
        "unparsable_dec": ("medfee_sumamt", "1O0.00"),
        "unparsable_date": ("begndate", "2024-02-30"),
        "malformed_code": ("mdtrtarea_admvs", None),
        "future_timestamp": ("setl_time", "2099-01-01 08:00:00"),
        "outside_batch_month": ("setl_time", f"{before} 12:00:00"),
    }
    for kind, (column, value) in edits.items():
        rows = picked[kind]
        if not len(rows):
            continue
        col = table.column(column).combine_chunks()
        mask = np.zeros(n, dtype=bool)
        mask[rows] = True
        if kind == "malformed_code":
            replacement = pc.utf8_slice_codeunits(col, 0, 5)
        else:
            replacement = pa.array([value] * n, pa.string())
        table = table.set_column(
            table.schema.get_field_index(column),
            column,
            pc.if_else(pa.array(mask), replacement, col),
        )
    return table, picked


def shorten_rows(path: Path, rows: np.ndarray, keep_fields: int = 6) -> None:
    """Cut the given data rows (0-based, after the header) to their first fields."""
    if not len(rows):
        return
    lines = path.read_bytes().split(b"\n")
    for r in rows:  # only the planted rows, a handful per batch
        lines[r + 1] = b",".join(lines[r + 1].split(b",")[:keep_fields])
    path.write_bytes(b"\n".join(lines))
