"""Settlements, fee lines, institutions and practitioners of the simulated world.

Amounts are computed in integer cents so that the contract's identities hold to
the cent; everything is vectorised over the persons of a region and month.
Rates and ratios are named below with where they come from; those marked
"assumed" are the simulator's own until calibrated against a published figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from yibao.simulate.people import Enrollments

# Visits per insured person per month by med_type (assumed; about 4 settlements a
# person a year, as ~14.5 million settlements a day over 1.33 billion insured).
VISIT_RATE = {"11": 0.15, "41": 0.12, "14": 0.03, "13": 0.01, "21": 0.0167, "22": 0.001}
# Maternity rates per woman aged 20-40 per month (assumed: ~9 million births a year).
MATERNITY_RATE = {"51": 0.01, "52": 0.0035}
# Respiratory winter peak on general outpatient, emergency and inpatient (assumed).
WINTER_MONTHS = {12, 1, 2}
WINTER_FACTOR = 1.25
# Median cost (yuan) by med_type and hospital level 01 tertiary, 02 secondary, 03 primary.
MEDIAN_COST = {
    "11": (300, 150, 80),
    "13": (700, 450, 250),
    "14": (500, 380, 260),
    "21": (15000, 7000, 3000),
    "22": (18000, 9000, 4000),
    "41": (90, 90, 90),
    "51": (250, 180, 120),
    "52": (7000, 5000, 3500),
}
COST_SIGMA = {"21": 0.8, "22": 0.9, "52": 0.5}  # lognormal spread; 0.7 elsewhere
# Fund ratio within the policy scope, inpatient, by insutype and level (assumed; gives
# ~80% employee and ~70% resident inpatient fund-paid share: NHSA 2024).
INPATIENT_RATIO = {"310": (0.90, 0.92, 0.95), "390": (0.75, 0.81, 0.87), "510": (1.0, 1.0, 1.0)}
OUTPATIENT_RATIO = {"310": 0.60, "390": 0.50, "510": 1.0}
# Inpatient deductible (起付线) in yuan by level (assumed, typical municipal policy).
DEDUCTIBLE = (1000, 600, 300)
# Shares of the cost outside the policy scope (assumed).
FULL_OWNPAY_SHARE = 0.03
OVERLIMIT_SHARE = 0.01
PRESELFPAY_SHARE = 0.02
# Employees pay this share of their own part from the personal account (assumed).
ACCOUNT_SHARE = {"11": 0.7, "41": 0.9, "14": 0.6, "13": 0.5, "21": 0.3, "22": 0.3}
# Resident critical-illness insurance pays this share above the threshold (assumed).
CRITICAL_THRESHOLD = 15000
CRITICAL_RATIO = 0.6
# Share of settlements treated in another province (238 million of ~5.3 billion, 2024).
CROSS_PROVINCE = {"21": 0.06, "22": 0.05, "11": 0.045, "13": 0.05, "14": 0.03, "41": 0.03}
# Share of inpatient cases paid by DRG/DIP group (~90% of inpatient fund: Shandong 2025).
DRG_SHARE = 0.92
# Settlements later reversed (退费), and how many months later at most (assumed).
REVERSAL_RATE = 0.008
REVERSAL_MAX_LAG = 3
# Hospitals per 10,000 insured and their level mix (assumed).
HOSPITALS_PER_10K = 2.0
LEVEL_MIX = (0.1, 0.3, 0.6)
DOCTORS_PER_HOSPITAL = (40, 15, 5)

DIAGNOSES = {
    "11": ["J06.900", "I10.x00", "E11.900", "K29.700", "M54.500"],
    "13": ["R10.400", "S09.900", "J18.900"],
    "14": ["I10.x00", "E11.900", "N18.500"],
    "21": ["J18.900", "I63.900", "I25.100", "K80.200", "C34.900"],
    "22": ["S72.000", "S82.200"],
    "41": ["Z76.000"],
    "51": ["Z34.900"],
    "52": ["O80.000"],
}
PROCEDURES = {"K80.200": "51.2300", "O80.000": "73.5900", "S72.000": "79.3500"}
LOS_MEDIAN = {"J18.900": 8, "I63.900": 12, "I25.100": 7, "K80.200": 6, "C34.900": 14,
              "S72.000": 15, "S82.200": 12, "O80.000": 4}  # fmt: skip
# Fee line items: (med_chrgitm_type, chrgitm_lv, weight); inpatient always has bed and nursing.
ITEMS_OUT = [("02", "01", 1), ("04", "01", 2), ("09", "01", 4), ("11", "02", 2), ("03", "02", 1)]
ITEMS_IN = [("01", "01", 2), ("07", "01", 1), ("04", "01", 2), ("09", "01", 4), ("05", "01", 2),
            ("06", "02", 1), ("08", "02", 2), ("03", "02", 1)]  # fmt: skip


# Lookup arrays, so that per-settlement parameters are gathered by index, not by a loop.
MED_TYPES = np.array(sorted(MEDIAN_COST))
_MEDIAN = np.array([MEDIAN_COST[m] for m in MED_TYPES], dtype=float)
_SIGMA = np.array([COST_SIGMA.get(m, 0.7) for m in MED_TYPES])
_ACCOUNT = np.array([ACCOUNT_SHARE.get(m, 0.0) for m in MED_TYPES])
_CROSS = np.array([CROSS_PROVINCE.get(m, 0.0) for m in MED_TYPES])
_N_DIAG = np.array([len(DIAGNOSES[m]) for m in MED_TYPES])
_DIAG = np.array([[DIAGNOSES[m][j % len(DIAGNOSES[m])] for j in range(5)] for m in MED_TYPES])
INSUTYPES = np.array(["310", "390", "510"])
_IN_RATIO = np.array([INPATIENT_RATIO[t] for t in INSUTYPES])
_OUT_RATIO = np.array([OUTPATIENT_RATIO[t] for t in INSUTYPES])
DIAG_CODES = np.array(sorted({d for ds in DIAGNOSES.values() for d in ds}))
_LOS = np.array([LOS_MEDIAN.get(d, 1) for d in DIAG_CODES], dtype=float)
_OPRN = np.array([PROCEDURES.get(d, "") for d in DIAG_CODES])


@dataclass
class Institutions:
    code: np.ndarray
    admdvs: np.ndarray
    level: np.ndarray  # index 0 tertiary .. 2 primary
    kind: np.ndarray  # "1" medical institution, "2" pharmacy
    doctors: dict[str, np.ndarray]

    def table(self, period_start: str) -> pa.Table:
        n = len(self.code)
        return pa.table(
            {
                "fixmedins_code": self.code,
                "fixmedins_name": np.char.add(
                    np.where(self.kind == "1", "医院", "药店"), np.char.mod("%s", self.code)
                ),
                "fixmedins_type": self.kind,
                "hosp_lv": np.where(
                    self.kind == "1", np.char.zfill((self.level + 1).astype("U"), 2), "04"
                ),
                "admdvs": self.admdvs,
                "agmt_begndate": np.full(n, "2019-01-01"),
                "agmt_enddate": np.full(n, "2029-12-31"),
                "vali_flag": np.full(n, "1"),
            }
        )

    def practitioners(self) -> pa.Table:
        codes = np.concatenate(list(self.doctors.values())) if self.doctors else np.array([])
        owners = np.concatenate([np.full(len(v), k) for k, v in self.doctors.items()])
        kinds = np.where(np.char.startswith(owners, "P"), "2", "1")
        return pa.table(
            {
                "dr_code": codes,
                "dr_name": np.char.add("医师", codes.astype("U")),
                "fixmedins_code": owners,
                "dr_type": kinds,
                "vali_flag": np.full(len(codes), "1"),
            }
        )


def make_institutions(rng: np.random.Generator, admdvs: str, insured: int) -> Institutions:
    n_hosp = max(3, round(insured / 10_000 * HOSPITALS_PER_10K))
    n_pharm = max(2, n_hosp // 2)
    level = np.concatenate([[0, 1, 2], rng.choice(3, n_hosp - 3, p=LEVEL_MIX)])
    hosp = np.char.add(f"H{admdvs}", np.char.zfill(np.arange(1, n_hosp + 1).astype("U"), 5))
    pharm = np.char.add(f"P{admdvs}", np.char.zfill(np.arange(1, n_pharm + 1).astype("U"), 5))
    doctors: dict[str, np.ndarray] = {}
    serial = 1
    for code, lv in zip(hosp, level, strict=True):
        k = DOCTORS_PER_HOSPITAL[lv]
        doctors[str(code)] = np.char.add(
            f"D{admdvs}", np.char.zfill(np.arange(serial, serial + k).astype("U"), 6)
        )
        serial += k
    for code in pharm:
        doctors[str(code)] = np.char.add(
            f"D{admdvs}", np.char.zfill(np.arange(serial, serial + 2).astype("U"), 6)
        )
        serial += 2
    return Institutions(
        code=np.concatenate([hosp, pharm]),
        admdvs=np.full(n_hosp + n_pharm, admdvs),
        level=np.concatenate([level, np.full(n_pharm, 2)]),
        kind=np.concatenate([np.full(n_hosp, "1"), np.full(n_pharm, "2")]),
        doctors=doctors,
    )


def doctor_index(inst: Institutions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat practitioner codes with each institution's offset and count, for vectorised picks."""
    counts = np.array([len(inst.doctors[str(c)]) for c in inst.code])
    flat = np.concatenate([inst.doctors[str(c)] for c in inst.code])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return flat, starts, counts


def _lognormal_cents(rng, median: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return np.maximum(
        100, np.round(median * np.exp(sigma * rng.standard_normal(len(median))) * 100)
    ).astype(np.int64)


_CENT = pa.scalar(Decimal("0.01"), pa.decimal128(3, 2))


def cents_text(cents: np.ndarray) -> pa.Array:
    """Integer cents as exact DECIMAL(18,2) (written as 12.34): no float on the way to the file."""
    return pc.multiply(pa.array(cents, pa.int64()).cast(pa.decimal128(19, 0)), _CENT).cast(
        pa.decimal128(18, 2)
    )


def settlements(
    rng: np.random.Generator,
    persons: Enrollments,
    home: str,
    month: np.datetime64,
    days_in_month: int,
    regions: dict[str, Institutions],
    serial0: int,
) -> tuple[dict[str, np.ndarray], int]:
    """One month of one region's insured persons' settlements, as columns (amounts in cents)."""
    n = len(persons.psn_no)
    age = (month - persons.brdy).astype("timedelta64[D]").astype(np.int64) / 365.25
    winter = WINTER_FACTOR if int(str(month)[5:7]) in WINTER_MONTHS else 1.0
    women = (persons.gend == "2") & (age >= 20) & (age <= 40)
    rows, types = [], []
    for mt, rate in {**VISIT_RATE, **MATERNITY_RATE}.items():
        r = np.full(n, rate * (winter if mt in ("11", "13", "21") else 1.0))
        if mt in MATERNITY_RATE:
            r = np.where(women, rate, 0.0)
        counts = rng.poisson(r)
        idx = np.repeat(np.arange(n), counts)
        rows.append(idx)
        types.append(np.full(len(idx), mt))
    who = np.concatenate(rows)
    med_type = np.concatenate(types)
    k = len(who)
    insutype = persons.insutype[who]
    insutype = np.where(np.isin(med_type, ["51", "52"]) & (insutype == "310"), "510", insutype)

    # Where treated: mostly at home, sometimes in another province.
    others = [r for r in regions if r[:2] != home[:2]]
    cross = (rng.random(k) < _CROSS[np.searchsorted(MED_TYPES, med_type)]) & bool(others)
    treat = np.where(
        cross, np.array(others or [home])[rng.integers(0, max(1, len(others)), k)], home
    )

    fixmedins = np.empty(k, dtype="U12")
    doctor = np.empty(k, dtype="U13")
    level = np.zeros(k, dtype=np.int64)
    for code in np.unique(treat):
        inst = regions[str(code)]
        flat, starts, counts = doctor_index(inst)
        here = np.flatnonzero(treat == code)
        pharmacy = med_type[here] == "41"
        pool_h = np.flatnonzero(inst.kind == "1")
        pool_p = np.flatnonzero(inst.kind == "2")
        choice = np.where(
            pharmacy,
            pool_p[rng.integers(0, len(pool_p), len(here))],
            pool_h[rng.integers(0, len(pool_h), len(here))],
        )
        fixmedins[here] = inst.code[choice]
        level[here] = inst.level[choice]
        doctor[here] = flat[
            starts[choice] + (rng.random(len(here)) * counts[choice]).astype(np.int64)
        ]

    mt = np.searchsorted(MED_TYPES, med_type)
    it = np.searchsorted(INSUTYPES, insutype)
    medfee = _lognormal_cents(rng, _MEDIAN[mt, level], _SIGMA[mt])
    fulamt = np.round(medfee * FULL_OWNPAY_SHARE * rng.uniform(0.5, 1.5, k)).astype(np.int64)
    overlmt = np.round(medfee * OVERLIMIT_SHARE * rng.uniform(0.5, 1.5, k)).astype(np.int64)
    preself = np.round(medfee * PRESELFPAY_SHARE * rng.uniform(0.5, 1.5, k)).astype(np.int64)
    inscp = medfee - fulamt - overlmt - preself
    inpatient = np.isin(med_type, ["21", "22", "52"])
    dedc = np.where(inpatient, np.minimum(inscp, np.array(DEDUCTIBLE)[level] * 100), 0)
    ratio = np.where(
        inpatient,
        _IN_RATIO[it, level],
        _OUT_RATIO[it] + np.where(med_type == "14", 0.1, 0.0),
    )
    ratio = np.where(med_type == "41", 0.0, ratio)  # retail pharmacy: account or cash
    hifp = np.round((inscp - dedc) * ratio).astype(np.int64)
    hifmi = np.where(
        inpatient & (insutype == "390"),
        np.round(np.maximum(0, inscp - hifp - CRITICAL_THRESHOLD * 100) * CRITICAL_RATIO),
        0,
    ).astype(np.int64)
    fund = hifp + hifmi
    psn_part = medfee - fund
    acct = np.where(insutype == "310", np.round(psn_part * _ACCOUNT[mt]), 0).astype(np.int64)

    seconds = rng.integers(0, days_in_month * 86400, k)
    setl_time = month.astype("datetime64[s]") + seconds.astype("timedelta64[s]")
    setl_day = setl_time.astype("datetime64[D]")
    diag = _DIAG[mt, rng.integers(0, 60, k) % _N_DIAG[mt]]
    dx = np.searchsorted(DIAG_CODES, diag)
    los_median = _LOS[dx]
    los = np.where(
        inpatient, np.maximum(1, np.round(los_median * np.exp(0.4 * rng.standard_normal(k)))), 0
    )
    begndate = setl_day - los.astype("timedelta64[D]")
    oprn = _OPRN[dx]
    drg = np.where(
        inpatient & (rng.random(k) < DRG_SHARE),
        np.char.add("DIP-", np.char.replace(diag, ".", "")),
        "",
    )

    serial = np.arange(serial0, serial0 + k)
    cols = {
        "setl_id": np.char.add("S", np.char.zfill(serial.astype("U"), 15)),
        "mdtrt_id": np.char.add("M", np.char.zfill(serial.astype("U"), 15)),
        "psn_no": persons.psn_no[who],
        "certno": persons.certno[who],
        "psn_name": persons.psn_name[who],
        "gend": persons.gend[who],
        "brdy": np.datetime_as_string(persons.brdy[who]),
        "insutype": insutype,
        "med_type": med_type,
        "begndate": np.datetime_as_string(begndate),
        "enddate": np.datetime_as_string(setl_day),
        "setl_time": np.char.replace(np.datetime_as_string(setl_time), "T", " "),
        "fixmedins_code": fixmedins,
        "atddr_no": doctor,
        "diag_code": diag,
        "oprn_oprt_code": oprn,
        "insuplc_admdvs": np.full(k, home),
        "mdtrtarea_admvs": treat,
        "medfee_sumamt": medfee,
        "fulamt_ownpay_amt": fulamt,
        "overlmt_selfpay": overlmt,
        "preselfpay_amt": preself,
        "inscp_scp_amt": inscp,
        "act_pay_dedc": dedc.astype(np.int64),
        "hifp_pay": hifp,
        "cvlserv_pay": np.zeros(k, dtype=np.int64),
        "hifes_pay": np.zeros(k, dtype=np.int64),
        "hifmi_pay": hifmi,
        "hifob_pay": np.zeros(k, dtype=np.int64),
        "maf_pay": np.zeros(k, dtype=np.int64),
        "oth_pay": np.zeros(k, dtype=np.int64),
        "fund_pay_sumamt": fund,
        "psn_part_amt": psn_part,
        "acct_pay": acct,
        "psn_cash_pay": psn_part - acct,
        "hosp_part_amt": np.zeros(k, dtype=np.int64),
        "acct_mulaid_pay": np.zeros(k, dtype=np.int64),
        "refd_setl_flag": np.full(k, "0"),
        "init_setl_id": np.full(k, ""),
        "drg_dip_code": drg,
        "clr_type": med_type,
        "_level": level,
    }
    return cols, serial0 + k


AMOUNTS = [
    "medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt",
    "act_pay_dedc", "hifp_pay", "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay",
    "oth_pay", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay", "hosp_part_amt",
    "acct_mulaid_pay",
]  # fmt: skip


def fee_lines(rng: np.random.Generator, setl: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Fee lines that add up to each settlement's total, each line = quantity × price."""
    k = len(setl["setl_id"])
    inpatient = np.isin(setl["med_type"], ["21", "22", "52"])
    n_lines = np.where(inpatient, rng.integers(8, 21, k), rng.integers(2, 6, k))
    owner = np.repeat(np.arange(k), n_lines)
    starts = np.concatenate([[0], np.cumsum(n_lines)[:-1]]) if k else np.array([], dtype=np.int64)
    line_no = np.arange(len(owner)) - np.repeat(starts, n_lines)
    weight = rng.gamma(1.0, 1.0, len(owner))
    share = weight / np.repeat(np.add.reduceat(weight, starts) if k else weight, n_lines)
    total = setl["medfee_sumamt"][owner]
    cents = np.floor(share * total).astype(np.int64)
    # Items: inpatient lines 0 and 1 are bed and nursing; others drawn by weight.
    items = np.where(inpatient[owner], 1, 0)
    pick_out = rng.choice(len(ITEMS_OUT), len(owner), p=_weights(ITEMS_OUT))
    pick_in = rng.choice(len(ITEMS_IN), len(owner), p=_weights(ITEMS_IN))
    item_type = np.where(
        items == 1,
        np.array([i[0] for i in ITEMS_IN])[pick_in],
        np.array([i[0] for i in ITEMS_OUT])[pick_out],
    )
    item_lv = np.where(
        items == 1,
        np.array([i[1] for i in ITEMS_IN])[pick_in],
        np.array([i[1] for i in ITEMS_OUT])[pick_out],
    )
    item_type = np.where(inpatient[owner] & (line_no == 0), "01", item_type)
    item_type = np.where(inpatient[owner] & (line_no == 1), "07", item_type)
    item_lv = np.where(inpatient[owner] & (line_no < 2), "01", item_lv)
    # Quantities: drugs and materials come in several units; a line's total is qty × price.
    cnt = np.where(
        np.isin(item_type, ["09", "11", "08"]) & (line_no > 0), rng.integers(1, 6, len(owner)), 1
    )
    cents = cents - cents % cnt
    # What the rounding left over goes to the settlement's first line (quantity 1).
    remainder = (
        total[starts] - np.add.reduceat(cents, starts) if k else np.array([], dtype=np.int64)
    )
    cents[starts] += remainder
    price = cents // cnt
    code = np.char.add(item_type, np.char.zfill(rng.integers(0, 500, len(owner)).astype("U"), 6))
    return {
        "feedetl_sn": np.char.zfill((line_no + 1).astype("U"), 4),
        "setl_id": setl["setl_id"][owner],
        "mdtrt_id": setl["mdtrt_id"][owner],
        "psn_no": setl["psn_no"][owner],
        "fee_ocur_time": setl["setl_time"][owner],
        "hilist_code": code,
        "hilist_name": np.char.add("项目", code),
        "med_chrgitm_type": item_type,
        "chrgitm_lv": item_lv,
        "cnt": cnt,
        "pric": price,
        "det_item_fee_sumamt": cents,
        "selfpay_prop": np.where(
            item_lv == "01", "0.0000", np.where(item_lv == "02", "0.1000", "1.0000")
        ),
        "bilg_dr_codg": setl["atddr_no"][owner],
        "fixmedins_code": setl["fixmedins_code"][owner],
    }


def _weights(items) -> np.ndarray:
    w = np.array([i[2] for i in items], dtype=float)
    return w / w.sum()


def reversals(
    rng: np.random.Generator,
    setl: dict[str, np.ndarray],
    lines: dict[str, np.ndarray],
    serial0: int,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray], int]:
    """Some settlements are reversed later: negated copies pointing at the original.

    Returns the months of lag of each reversal, its settlement and fee-line columns.
    """
    k = len(setl["setl_id"])
    picked = np.flatnonzero(rng.random(k) < REVERSAL_RATE)
    lag = rng.choice(REVERSAL_MAX_LAG + 1, len(picked), p=[0.7, 0.15, 0.1, 0.05])
    rev = {name: col[picked] for name, col in setl.items()}
    serial = np.arange(serial0, serial0 + len(picked))
    new_ids = np.char.add("S", np.char.zfill(serial.astype("U"), 15))
    rev["init_setl_id"] = rev["setl_id"]
    rev["setl_id"] = new_ids
    rev["refd_setl_flag"] = np.full(len(picked), "1")
    for name in AMOUNTS:
        rev[name] = -rev[name]
    # The reversal happens `lag` months later, a few days after the same day of month.
    when = rev["setl_time"].astype("datetime64[s]")
    months_later = (when.astype("datetime64[M]") + lag).astype("datetime64[s]")
    offset = when - when.astype("datetime64[M]").astype("datetime64[s]")
    later = months_later + np.minimum(offset + np.timedelta64(2, "D"), np.timedelta64(27, "D"))
    rev["setl_time"] = np.char.replace(np.datetime_as_string(later), "T", " ")
    chosen = np.isin(lines["setl_id"], setl["setl_id"][picked])
    rev_lines = {name: col[chosen] for name, col in lines.items()}
    # Settlement ids grow with position, so a sorted search maps each line to its reversal.
    at = np.searchsorted(setl["setl_id"][picked], rev_lines["setl_id"])
    rev_lines["setl_id"] = new_ids[at]
    rev_lines["fee_ocur_time"] = rev["setl_time"][at]
    for name in ("det_item_fee_sumamt", "pric"):
        rev_lines[name] = -rev_lines[name]
    return lag, rev, rev_lines, serial0 + len(picked)


def setl_table(cols: dict[str, np.ndarray]) -> pa.Table:
    out = {}
    for name, col in cols.items():
        if name.startswith("_"):
            continue
        if name in AMOUNTS:
            out[name] = cents_text(col)
        else:
            out[name] = pa.array(
                col, mask=(col == "") if col.dtype.kind == "U" else None, type=pa.string()
            )
    return pa.table(out)


def fee_table(cols: dict[str, np.ndarray]) -> pa.Table:
    out = {}
    for name, col in cols.items():
        if name in ("pric", "det_item_fee_sumamt"):
            out[name] = cents_text(col)
        elif name == "cnt":
            out[name] = pa.array(col, pa.int32()).cast(pa.decimal128(18, 4))
        else:
            out[name] = col.astype("U")
    return pa.table(out)
