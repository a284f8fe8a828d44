"""Settlements, fee lines, institutions and practitioners of the simulated world.

Amounts are integer cents so that the contract's identities hold to the cent;
codes and ids are integers or indices into small tables until a batch is
written, when Arrow kernels turn whole columns into text. Everything is
vectorised over the persons of a region and month. Rates marked "assumed" are
the simulator's own until calibrated against a published figure.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from importlib import resources

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from yibao.simulate.people import (
    EMPLOYEE,
    RESIDENT,
    Persons,
    certificate_numbers,
    codes,
    distinct,
    gend_codes,
    person_names,
    psn_numbers,
)

# Visits per insured person per month by med_type (assumed; about 4 settlements a
# person a year, as ~14.5 million settlements a day over 1.33 billion insured).
VISIT_RATE = {"11": 0.15, "41": 0.12, "14": 0.03, "13": 0.01, "21": 0.0142, "22": 0.001}
# Maternity rates per woman aged 20-40 per month (assumed: ~9 million births a year).
MATERNITY_RATE = {"51": 0.01, "52": 0.0035}
INPATIENT_TYPES = ("21", "22", "52")
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
# Self-paid (丙类) catalogue items on a normal line, always paid by the person (assumed).
CLASS_C_LINE_RATE = 0.01
# Practitioner codes from this serial up are never registered (planted defects only).
UNREGISTERED_SERIAL = 900_000

# Diagnoses by med_type for normal visits: none is specific to sex or age except maternity.
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
# Codes used only by planted defects (sex- and age-specific), with their procedures.
DEFECT_DIAGNOSES = ["C61.x00", "N40.x00", "N83.200", "P07.300", "Z31.200"]
PROCEDURES = {"K80.200": "51.2300", "O80.000": "73.5900", "S72.000": "79.3500"}
DEFECT_PROCEDURES = ["60.2900", "68.1200"]  # transurethral prostatectomy, hysteroscopy
LOS_MEDIAN = {"J18.900": 8, "I63.900": 12, "I25.100": 7, "K80.200": 6, "C34.900": 14,
              "S72.000": 15, "S82.200": 12, "O80.000": 4}  # fmt: skip
# Length of stay above this many days for the diagnosis is over the limit (assumed 2.5×
# the median, as local clinical-pathway rules do).
LOS_LIMIT_FACTOR = 2.5

MED_TYPES = np.array(sorted(MEDIAN_COST))
_MEDIAN = np.array([MEDIAN_COST[m] for m in MED_TYPES], dtype=float)
_SIGMA = np.array([COST_SIGMA.get(m, 0.7) for m in MED_TYPES])
_ACCOUNT = np.array([ACCOUNT_SHARE.get(m, 0.0) for m in MED_TYPES])
_CROSS = np.array([CROSS_PROVINCE.get(m, 0.0) for m in MED_TYPES])
_INPATIENT = np.isin(MED_TYPES, INPATIENT_TYPES)
_CLAIM_INSUTYPES = np.array(["310", "390", "510"])
_IN_RATIO = np.array([INPATIENT_RATIO[t] for t in _CLAIM_INSUTYPES])
_OUT_RATIO = np.array([OUTPATIENT_RATIO[t] for t in _CLAIM_INSUTYPES])
DIAG_CODES = np.array(sorted({d for ds in DIAGNOSES.values() for d in ds} | set(DEFECT_DIAGNOSES)))
_DIAG_OF = {d: i for i, d in enumerate(DIAG_CODES)}
_N_DIAG = np.array([len(DIAGNOSES[m]) for m in MED_TYPES])
_DIAG = np.array([[_DIAG_OF[DIAGNOSES[m][j % len(DIAGNOSES[m])]] for j in range(5)]
                  for m in MED_TYPES])  # fmt: skip
OPRN_CODES = np.array(["", *sorted(set(PROCEDURES.values()) | set(DEFECT_PROCEDURES))])
_OPRN = np.array([np.searchsorted(OPRN_CODES, PROCEDURES.get(d, "")) for d in DIAG_CODES])
_LOS = np.array([LOS_MEDIAN.get(d, 5) for d in DIAG_CODES], dtype=float)
_DRG_CODES = pa.array(["DIP-" + d.replace(".", "") for d in DIAG_CODES])
LOS_LIMIT = np.ceil(_LOS * LOS_LIMIT_FACTOR).astype(np.int64)


def diag_index(code: str) -> int:
    return _DIAG_OF[code]


def oprn_index(code: str) -> int:
    return int(np.searchsorted(OPRN_CODES, code))


# ---------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class Catalogue:
    code: np.ndarray
    name: pa.Array
    item_type: np.ndarray
    lv: np.ndarray
    price_cents: np.ndarray
    flag: np.ndarray


def load_catalogue() -> Catalogue:
    text = resources.files("yibao.simulate").joinpath("catalogue.csv").read_text("utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    return Catalogue(
        code=np.array([r["hilist_code"] for r in rows]),
        name=pa.array([r["hilist_name"] for r in rows]),
        item_type=np.array([r["med_chrgitm_type"] for r in rows]),
        lv=np.array([r["chrgitm_lv"] for r in rows]),
        price_cents=np.array([round(float(r["price"]) * 100) for r in rows], dtype=np.int64),
        flag=np.array([r["flag"] for r in rows]),
    )


CATALOGUE = load_catalogue()
_EXCLUDED = np.char.startswith(CATALOGUE.flag, "excluded_")
_IMAGING = np.char.startswith(CATALOGUE.flag, "imaging_")
_BED = np.flatnonzero(CATALOGUE.flag == "bed")
_NURSING = np.flatnonzero(CATALOGUE.flag == "nursing")
# Items a normal line is drawn from: neither imaging (planted only), bed/nursing (fixed
# lines), excluded nor self-paid; self-paid items are added apart, paid by the person.
_ORDINARY = np.flatnonzero(
    ~_EXCLUDED & ~_IMAGING & (CATALOGUE.lv != "03") & ~np.isin(CATALOGUE.flag, ["bed", "nursing"])
)
_OUTPATIENT_ITEMS = _ORDINARY[~np.isin(CATALOGUE.item_type[_ORDINARY], ["06", "01", "07"])]
CLASS_C = np.flatnonzero((CATALOGUE.lv == "03") & ~_EXCLUDED)
EXCLUDED = np.flatnonzero(_EXCLUDED)
UNKNOWN_ITEM = len(CATALOGUE.code)  # index past the catalogue: written as an unknown code
SELFPAY_PROP = pa.array(["0.0000", "0.1000", "1.0000"])  # by class 甲, 乙, 丙


def imaging_items(kind: str) -> np.ndarray:
    return np.flatnonzero(CATALOGUE.flag == f"imaging_{kind}")


# ------------------------------------------------------------------------- institutions


@dataclass
class Institutions:
    """The designated institutions and practitioners of one pooling region."""

    admdvs: int
    serial: np.ndarray  # 5-digit serial within the region
    pharmacy: np.ndarray  # bool
    level: np.ndarray  # 0 tertiary .. 2 primary; pharmacies 3 (ungraded)
    agmt_end: np.ndarray  # datetime64[D]
    dr_start: np.ndarray  # first practitioner serial of each institution
    dr_count: np.ndarray
    _register: pa.Table | None = None

    @property
    def codes(self) -> np.ndarray:
        return self.admdvs * 100_000 + self.serial

    def hospitals(self) -> np.ndarray:
        return np.flatnonzero(~self.pharmacy)

    def table(self, month: date) -> pa.Table:
        """The snapshot of `month`: an agreement that has ended is no longer valid."""
        n = len(self.serial)
        first = np.datetime64(month, "D")
        return pa.table(
            {
                "fixmedins_code": institution_codes(self.codes, self.pharmacy),
                "fixmedins_name": pc.binary_join_element_wise(
                    pa.array(np.where(self.pharmacy, "药店", "医院")),
                    pa.array(self.serial).cast(pa.string()),
                    "",
                ),
                "fixmedins_type": pa.array(np.where(self.pharmacy, "2", "1")),
                "hosp_lv": pc.utf8_lpad(pa.array(self.level + 1).cast(pa.string()), 2, "0"),
                "admdvs": pa.array(np.full(n, self.admdvs)).cast(pa.string()),
                "agmt_begndate": pa.array(np.full(n, np.datetime64("2019-01-01"))).cast(
                    pa.string()
                ),
                "agmt_enddate": pa.array(self.agmt_end).cast(pa.string()),
                "vali_flag": pa.array(np.where(self.agmt_end < first, "0", "1")),
            }
        )

    def practitioners(self) -> pa.Table:
        """The register, the same every month (made once)."""
        if self._register is None:
            self._register = self._practitioners()
        return self._register

    def _practitioners(self) -> pa.Table:
        owner = np.repeat(np.arange(len(self.serial)), self.dr_count)
        serial = np.concatenate(
            [np.arange(s, s + c) for s, c in zip(self.dr_start, self.dr_count, strict=True)]
        )
        codes = doctor_codes(np.full(len(serial), self.admdvs), serial)
        return pa.table(
            {
                "dr_code": codes,
                "dr_name": pc.binary_join_element_wise(
                    "医师", pa.array(serial).cast(pa.string()), ""
                ),
                "fixmedins_code": institution_codes(self.codes[owner], self.pharmacy[owner]),
                "dr_type": pa.array(np.where(self.pharmacy[owner], "2", "1")),
                "vali_flag": pa.array(np.full(len(serial), "1")),
            }
        )


def make_institutions(rng: np.random.Generator, admdvs: int, insured: int) -> Institutions:
    n_hosp = max(3, round(insured / 10_000 * HOSPITALS_PER_10K))
    n_pharm = max(2, n_hosp // 2)
    level = np.concatenate([[0, 1, 2], rng.choice(3, n_hosp - 3, p=LEVEL_MIX), np.full(n_pharm, 3)])
    dr_count = np.where(level == 3, 2, np.array([*DOCTORS_PER_HOSPITAL, 2])[level])
    n = n_hosp + n_pharm
    return Institutions(
        admdvs=admdvs,
        serial=np.arange(1, n + 1),
        pharmacy=np.arange(n) >= n_hosp,
        level=level,
        agmt_end=np.full(n, np.datetime64("2029-12-31")),
        dr_start=np.concatenate([[1], 1 + np.cumsum(dr_count)[:-1]]),
        dr_count=dr_count,
    )


_KIND_LETTER = pa.array(["H", "P"])


def institution_codes(codes: np.ndarray, pharmacy: np.ndarray) -> pa.Array:
    # The letter taken from a two-entry table: a NumPy array of one-letter strings
    # converted to Arrow cost more than the rest of the code.
    letter = _KIND_LETTER.take(pa.array(np.asarray(pharmacy, dtype=np.int8)))
    return pc.binary_join_element_wise(letter, pa.array(codes).cast(pa.string()), "")


def _lettered(letter: str, number: np.ndarray, width: int) -> pa.Array:
    """`letter` then `number` zero-padded to `width` digits, for 0 <= number < 10^width:
    10^width + number as text has those digits behind a leading 1, which the letter
    replaces. One cast and one slice: padding and joining took 2.5× as long."""
    return pc.utf8_replace_slice(pa.array(number + 10**width).cast(pa.string()), 0, 1, letter)


def doctor_codes(admdvs: np.ndarray, serial: np.ndarray) -> pa.Array:
    number = np.asarray(admdvs, dtype=np.int64) * 1_000_000 + serial
    if len(number) and (number.min() < 10**11 or number.max() >= 10**12):
        return pc.binary_join_element_wise("D", pa.array(number).cast(pa.string()), "")
    return _lettered("D", number, 12)  # twelve digits: no padding either way


# -------------------------------------------------------------------------- settlements


def _lognormal_cents(rng, median: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return np.maximum(
        100, np.round(median * np.exp(sigma * rng.standard_normal(len(median))) * 100)
    ).astype(np.int64)


_DEC = pa.decimal128(18, 2)


def cents_text(cents: np.ndarray) -> pa.Array:
    """Integer cents as exact DECIMAL(18,2) (written as 12.34): no float on the way to the file.

    A decimal128 holds the unscaled integer in 16 little-endian bytes, so the cents and
    their sign extension are the array's buffer as they are: no arithmetic at all.
    """
    c = np.ascontiguousarray(cents, dtype=np.int64)
    wide = np.empty((len(c), 2), dtype=np.int64)
    wide[:, 0] = c
    wide[:, 1] = c >> 63
    return pa.Array.from_buffers(_DEC, len(c), [None, pa.py_buffer(wide)])


AMOUNTS = [
    "medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt",
    "act_pay_dedc", "hifp_pay", "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay",
    "oth_pay", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay", "hosp_part_amt",
    "acct_mulaid_pay",
]  # fmt: skip
_ZERO_AMOUNTS = ("cvlserv_pay", "hifes_pay", "hifob_pay", "maf_pay", "oth_pay", "hosp_part_amt",
                 "acct_mulaid_pay")  # fmt: skip


def take(cols: dict[str, np.ndarray], idx) -> dict[str, np.ndarray]:
    return {name: col[idx] for name, col in cols.items()}


def concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    parts = [p for p in parts if len(p["serial"])] or parts[:1]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def visits(
    rng: np.random.Generator,
    persons: Persons,
    month: np.datetime64,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Who visits how often: (person index, med_type index) per settlement.

    At most one inpatient stay a person a month, and only in every other month (by person
    number), so that the stays of the normal population never overlap or follow each
    other within days: those patterns are planted apart, with their ground truth.
    """
    n = len(persons)
    age = (month - persons.brdy).astype(np.int64) / 365.25
    winter = WINTER_FACTOR if int(str(month)[5:7]) in WINTER_MONTHS else 1.0
    women = ~persons.male & (age >= 20) & (age <= 40)
    eligible = (persons.serial + k) % 2 == 0
    rows, types = [], []
    for mt, rate in {**VISIT_RATE, **MATERNITY_RATE}.items():
        r = rate * (winter if mt in ("11", "13", "21") else 1.0)
        if mt in MATERNITY_RATE:
            r = np.where(women, rate, 0.0)
        if mt in INPATIENT_TYPES:
            r = np.where(eligible, 2 * r, 0.0)
            counts = np.minimum(rng.poisson(r, n), 1)
        else:
            counts = rng.poisson(r, n)
        idx = np.repeat(np.arange(n), counts)
        rows.append(idx)
        types.append(np.full(len(idx), np.searchsorted(MED_TYPES, mt)))
    who = np.concatenate(rows)
    med_type = np.concatenate(types)
    # A woman has one maternity stay at most in a month, and not also another stay.
    inpatient = _INPATIENT[med_type]
    order = np.lexsort((MED_TYPES[med_type] != "52", ~inpatient, who))
    who, med_type = who[order], med_type[order]
    first_stay = np.ones(len(who), dtype=bool)
    inpatient = _INPATIENT[med_type]
    first_stay[1:] = ~(inpatient[1:] & inpatient[:-1] & (who[1:] == who[:-1]))
    keep = ~inpatient | first_stay
    return who[keep], med_type[keep]


def settlements(
    rng: np.random.Generator,
    persons: Persons,
    month: date,
    k: int,
    institutions: dict[int, Institutions],
    serial0: int,
    after_end_rate: float = 0.0,
    hubs: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """One month of settlements of insured persons of one province (any of its pooling
    regions), as columns (amounts in cents)."""
    start = np.datetime64(month, "D")
    next_month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    days = (next_month - month).days
    who, mt = visits(rng, persons, start, k)
    n = len(who)
    p = persons.take(who)
    insutype = p.insutype.astype(np.int64)  # 0 employee 310, 1 resident 390 (claim index)
    maternity = np.isin(MED_TYPES[mt], ["51", "52"])
    insutype = np.where(maternity & (p.psn_type == 0), 2, insutype)  # employed: 510

    # Where treated: mostly at home, sometimes in another province, at one of its hubs
    # (`hubs`: regions and weights, e.g. the capitals by population; patients who cross
    # a provincial border go to the big cities' hospitals).
    home = p.admdvs.astype(np.int64)
    province = int(home[0]) // 10_000 if n else 0
    codes, weight = hubs if hubs is not None else (np.array(list(institutions)), None)
    away = codes // 10_000 != province
    others = codes[away]
    cross = (rng.random(n) < _CROSS[mt]) & (len(others) > 0)
    if len(others):
        w = np.ones(len(others)) if weight is None else np.asarray(weight, dtype=float)[away]
        dest = others[np.searchsorted(np.cumsum(w / w.sum()), rng.random(n), side="right")
                      .clip(0, len(others) - 1)]  # fmt: skip
    else:
        dest = home
    treat = np.where(cross, dest, home)

    diag = _DIAG[mt, rng.integers(0, 60, n) % _N_DIAG[mt]]
    inpatient = _INPATIENT[mt]
    los = np.where(
        inpatient, np.maximum(1, np.round(_LOS[diag] * np.exp(0.4 * rng.standard_normal(n)))), 0
    ).astype(np.int64)
    los = np.minimum(los, np.minimum(LOS_LIMIT[diag], days - 1))
    # Inpatient stays begin and end inside the month; visits are on one day.
    day = (rng.random(n) * (days - los)).astype(np.int64) + los
    enddate = start + day.astype("timedelta64[D]")
    inst_serial = np.zeros(n, dtype=np.int64)
    pharmacy = MED_TYPES[mt] == "41"
    level = np.zeros(n, dtype=np.int64)
    after_end = np.zeros(n, dtype=bool)
    agmt_end = np.zeros(n, dtype="datetime64[D]")
    doctor = np.zeros(n, dtype=np.int64)
    for code in distinct(treat):
        inst = institutions[int(code)]
        here = np.flatnonzero(treat == code)
        pool_h = inst.hospitals()
        pool_p = np.flatnonzero(inst.pharmacy)
        choice = np.where(
            pharmacy[here],
            pool_p[rng.integers(0, len(pool_p), len(here))],
            pool_h[rng.integers(0, len(pool_h), len(here))],
        )
        # A settlement after the institution's agreement ended goes to its first hospital,
        # unless planted as an abuse (services after the agreement ended).
        late = inst.agmt_end[choice] < enddate[here]
        kept = late & (rng.random(len(here)) < after_end_rate)
        after_end[here] = kept
        ended = late & ~kept
        choice = np.where(ended, pool_h[0], choice)
        inst_serial[here] = inst.serial[choice]
        level[here] = inst.level[choice]
        agmt_end[here] = inst.agmt_end[choice]
        doctor[here] = inst.dr_start[choice] + (
            rng.random(len(here)) * inst.dr_count[choice]
        ).astype(np.int64)
    level = np.minimum(level, 2)

    medfee = _lognormal_cents(rng, _MEDIAN[mt, level], _SIGMA[mt])
    seconds = rng.integers(7 * 3600, 21 * 3600, n)
    cols = {
        "serial": np.arange(serial0, serial0 + n, dtype=np.int64),
        "mdtrt": np.arange(serial0, serial0 + n, dtype=np.int64),
        "psn_serial": p.serial,
        "psn_admdvs": p.admdvs,
        "cert_admdvs": p.cert_admdvs,
        "brdy": p.brdy,
        "seq": p.seq,
        "name": p.name,
        "insutype": insutype,
        "med_type": mt,
        "begndate": start + (day - los).astype("timedelta64[D]"),
        "enddate": enddate,
        "setl_time": start.astype("datetime64[s]")
        + (day * 86400 + seconds).astype("timedelta64[s]"),
        "treat": treat,
        "inst_serial": inst_serial,
        "pharmacy": pharmacy,
        "doctor": doctor,
        "diag": diag,
        "oprn": _OPRN[diag],
        "drg": inpatient & (rng.random(n) < DRG_SHARE),
        "refd": np.zeros(n, dtype=bool),
        "init_serial": np.full(n, -1, dtype=np.int64),
        "level": level,
        "after_end": after_end,
        "agmt_end": agmt_end,
        "medfee_sumamt": medfee,
    }
    price(rng, cols)
    return cols


def price(rng: np.random.Generator, cols: dict[str, np.ndarray]) -> None:
    """Split each settlement's total between the funds and the person, to the cent."""
    n = len(cols["serial"])
    mt, level, it = cols["med_type"], cols["level"], cols["insutype"]
    medfee = cols["medfee_sumamt"]
    fulamt = np.round(medfee * FULL_OWNPAY_SHARE * rng.uniform(0.5, 1.5, n)).astype(np.int64)
    overlmt = np.round(medfee * OVERLIMIT_SHARE * rng.uniform(0.5, 1.5, n)).astype(np.int64)
    preself = np.round(medfee * PRESELFPAY_SHARE * rng.uniform(0.5, 1.5, n)).astype(np.int64)
    inscp = medfee - fulamt - overlmt - preself
    inpatient = _INPATIENT[mt]
    dedc = np.where(inpatient, np.minimum(inscp, np.array(DEDUCTIBLE)[level] * 100), 0)
    ratio = np.where(
        inpatient, _IN_RATIO[it, level], _OUT_RATIO[it] + np.where(MED_TYPES[mt] == "14", 0.1, 0.0)
    )
    ratio = np.where(MED_TYPES[mt] == "41", 0.0, ratio)  # retail pharmacy: account or cash
    hifp = np.round((inscp - dedc) * ratio).astype(np.int64)
    hifmi = np.where(
        inpatient & (it == RESIDENT),
        np.round(np.maximum(0, inscp - hifp - CRITICAL_THRESHOLD * 100) * CRITICAL_RATIO),
        0,
    ).astype(np.int64)
    fund = hifp + hifmi
    psn_part = medfee - fund
    employee = (it == EMPLOYEE) | (it == 2)
    acct = np.where(employee, np.round(psn_part * _ACCOUNT[mt]), 0).astype(np.int64)
    cols.update(
        fulamt_ownpay_amt=fulamt,
        overlmt_selfpay=overlmt,
        preselfpay_amt=preself,
        inscp_scp_amt=inscp,
        act_pay_dedc=dedc.astype(np.int64),
        hifp_pay=hifp,
        hifmi_pay=hifmi,
        fund_pay_sumamt=fund,
        psn_part_amt=psn_part,
        acct_pay=acct,
        psn_cash_pay=psn_part - acct,
        **{name: np.zeros(n, dtype=np.int64) for name in _ZERO_AMOUNTS},
    )


def fee_lines(rng: np.random.Generator, setl: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Fee lines that add up to each settlement's total, each line = quantity × price.

    Inpatient stays have a bed line and a nursing line first; a few lines are self-paid
    (丙类) items, which the person pays in full.
    """
    k = len(setl["serial"])
    inpatient = _INPATIENT[setl["med_type"]]
    n_lines = np.where(inpatient, rng.integers(8, 21, k), rng.integers(2, 6, k))
    owner = np.repeat(np.arange(k), n_lines)
    starts = np.concatenate([[0], np.cumsum(n_lines)[:-1]]).astype(np.int64)
    line_no = np.arange(len(owner)) - np.repeat(starts, n_lines)
    in_line = inpatient[owner]
    pool = np.where(in_line, 1, 0)
    item = np.where(
        pool == 1,
        _ORDINARY[rng.integers(0, len(_ORDINARY), len(owner))],
        _OUTPATIENT_ITEMS[rng.integers(0, len(_OUTPATIENT_ITEMS), len(owner))],
    )
    item = np.where(in_line & (line_no == 0), _BED[rng.integers(0, len(_BED), len(owner))], item)
    item = np.where(
        in_line & (line_no == 1), _NURSING[rng.integers(0, len(_NURSING), len(owner))], item
    )
    class_c = (line_no >= 2) & (rng.random(len(owner)) < CLASS_C_LINE_RATE)
    item = np.where(class_c, CLASS_C[rng.integers(0, len(CLASS_C), len(owner))], item)
    lines = {
        "setl_row": owner,
        "line_no": line_no,
        "item": item,
        "selfpay": np.searchsorted(np.array(["01", "02", "03"]), CATALOGUE.lv[item]),
    }
    spread(rng, lines, setl["medfee_sumamt"], starts, n_lines)
    return lines


def spread(rng, lines: dict[str, np.ndarray], total_of: np.ndarray, starts, n_lines) -> None:
    """Share each settlement's total over its lines, quantity × price to the cent."""
    owner = lines["setl_row"]
    # A floor under the weights: no line of a 1-yuan visit rounds down to 0.00.
    weight = 0.2 + rng.gamma(1.0, 1.0, len(owner))
    share = weight / np.repeat(np.add.reduceat(weight, starts), n_lines) if len(owner) else weight
    total = total_of[owner]
    cents = np.maximum(1, np.floor(share * total)).astype(np.int64)
    item_type = CATALOGUE.item_type[np.minimum(lines["item"], UNKNOWN_ITEM - 1)]
    cnt = np.where(
        np.isin(item_type, ["09", "11", "08"]) & (lines["line_no"] > 0),
        rng.integers(1, 6, len(owner)),
        1,
    )
    cnt = np.where(cents >= 100 * cnt, cnt, 1)  # several units only at a yuan or more each
    cents = cents - cents % cnt
    # What the rounding left over goes to the settlement's first line (quantity 1).
    if len(owner):
        cents[starts] += total_of[owner[starts]] - np.add.reduceat(cents, starts)
    lines.update(cnt=cnt, pric=cents // cnt, det_item_fee_sumamt=cents)


def reversals(
    rng: np.random.Generator,
    setl: dict[str, np.ndarray],
    lines: dict[str, np.ndarray],
    serial0: int,
    eligible: np.ndarray,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Some settlements are reversed later: negated copies pointing at the original.

    Returns the months of lag of each reversal, its settlement and fee-line columns.
    """
    k = len(setl["serial"])
    picked = np.flatnonzero(eligible & (rng.random(k) < REVERSAL_RATE))
    lag = rng.choice(REVERSAL_MAX_LAG + 1, len(picked), p=[0.7, 0.15, 0.1, 0.05])
    rev = take(setl, picked)
    rev["init_serial"] = rev["serial"]
    rev["serial"] = np.arange(serial0, serial0 + len(picked), dtype=np.int64)
    rev["refd"] = np.ones(len(picked), dtype=bool)
    for name in AMOUNTS:
        rev[name] = -rev[name]
    # The reversal happens `lag` months later, a few days after the same day of month.
    when = rev["setl_time"]
    month_start = when.astype("datetime64[M]")
    offset = when - month_start.astype("datetime64[s]")
    target = (month_start + lag).astype("datetime64[s]")
    last_second = (month_start + lag + 1).astype("datetime64[s]") - np.timedelta64(1, "s")
    # Never before the original (same month: at the latest the month's last second).
    later = np.minimum(target + offset + np.timedelta64(2 * 86400, "s"), last_second)
    rev["setl_time"] = later
    chosen = np.isin(lines["setl_row"], picked)
    rev_lines = take(lines, chosen)
    rev_lines["setl_row"] = np.searchsorted(picked, rev_lines["setl_row"])
    for name in ("det_item_fee_sumamt", "pric"):
        rev_lines[name] = -rev_lines[name]
    return lag, rev, rev_lines


def ids(prefix: str, serial: np.ndarray) -> pa.Array:
    """Settlement and visit ids: a letter and 15 digits."""
    if len(serial) and (serial.min() < 0 or serial.max() >= 10**15):
        return pc.binary_join_element_wise(
            prefix, pc.utf8_lpad(pa.array(serial).cast(pa.string()), 15, "0"), ""
        )
    return _lettered(prefix, serial, 15)


def _text(table_values: np.ndarray, idx: np.ndarray, null_empty: bool = True) -> pa.Array:
    """Codes by index into a small table ('' becomes null)."""
    mask = (np.asarray(table_values) == "")[idx] if null_empty else None
    return codes(idx, pa.array(table_values), mask)


def setl_table(cols: dict[str, np.ndarray]) -> pa.Table:
    n = len(cols["serial"])
    med_type = _text(MED_TYPES, cols["med_type"])
    diag = _text(DIAG_CODES, cols["diag"])
    drg = codes(cols["diag"], _DRG_CODES, ~cols["drg"])
    init = ids("S", cols["init_serial"])
    out = {
        "setl_id": ids("S", cols["serial"]),
        "mdtrt_id": ids("M", cols["mdtrt"]),
        "psn_no": psn_numbers(cols["psn_admdvs"], cols["psn_serial"]),
        "certno": certificate_numbers(cols["cert_admdvs"], cols["brdy"], cols["seq"]),
        "psn_name": person_names(cols["name"]),
        "gend": gend_codes(cols["seq"]),
        "brdy": pa.array(cols["brdy"]),
        "insutype": _text(_CLAIM_INSUTYPES, cols["insutype"]),
        "med_type": med_type,
        "begndate": pa.array(cols["begndate"]),
        "enddate": pa.array(cols["enddate"]),
        "setl_time": pa.array(cols["setl_time"]),
        "fixmedins_code": institution_codes(
            cols["treat"] * 100_000 + cols["inst_serial"], cols["pharmacy"]
        ),
        "atddr_no": doctor_codes(cols["treat"], cols["doctor"]),
        "diag_code": diag,
        "oprn_oprt_code": _text(OPRN_CODES, cols["oprn"]),
        "insuplc_admdvs": pa.array(cols["psn_admdvs"]).cast(pa.string()),
        "mdtrtarea_admvs": pa.array(cols["treat"]).cast(pa.string()),
        **{name: cents_text(cols[name]) for name in AMOUNTS},
        "refd_setl_flag": _text(np.array(["0", "1"]), cols["refd"].astype(np.int32), False),
        "init_setl_id": pc.if_else(
            pa.array(cols["init_serial"] >= 0), init, pa.scalar(None, pa.string())
        ),
        "drg_dip_code": drg,
        "clr_type": med_type,
    }
    assert len(out["setl_id"]) == n
    return pa.table(out)


_LINE_ITEM_CODES = np.append(CATALOGUE.code, "99000001")
_LINE_ITEM_NAMES = pa.concat_arrays([CATALOGUE.name, pa.array(["未列入目录项目"])])
_LINE_TYPES = np.append(CATALOGUE.item_type, "14")
_LINE_LV = np.append(CATALOGUE.lv, "03")


_LINE_SN = pa.array([f"{i:04d}" for i in range(1, 257)])
_QTY = pa.decimal128(18, 4)


def fee_table(
    lines: dict[str, np.ndarray], setl: dict[str, np.ndarray], setl_text: pa.Table
) -> pa.Table:
    """Fee lines; `setl_row` points into the settlements `setl`, whose text columns
    (`setl_text`, from `setl_table`) the lines share instead of formatting them again."""
    owner = lines["setl_row"]
    item = lines["item"]
    qty = np.ascontiguousarray(lines["cnt"], dtype=np.int64) * 10_000
    wide = np.empty((len(qty), 2), dtype=np.int64)
    wide[:, 0], wide[:, 1] = qty, qty >> 63

    def shared(name: str) -> pa.Array:
        # A plain copy: dictionaries of a million ids cost more to unify than to copy.
        return setl_text.column(name).combine_chunks().take(pa.array(owner))

    return pa.table(
        {
            "feedetl_sn": codes(lines["line_no"], _LINE_SN),
            "setl_id": shared("setl_id"),
            "mdtrt_id": shared("mdtrt_id"),
            "psn_no": shared("psn_no"),
            "fee_ocur_time": pa.array(setl["setl_time"][owner]),
            "hilist_code": codes(item, pa.array(_LINE_ITEM_CODES)),
            "hilist_name": codes(item, _LINE_ITEM_NAMES),
            "med_chrgitm_type": codes(item, pa.array(_LINE_TYPES)),
            "chrgitm_lv": codes(item, pa.array(_LINE_LV)),
            "cnt": pa.Array.from_buffers(_QTY, len(qty), [None, pa.py_buffer(wide)]),
            "pric": cents_text(lines["pric"]),
            "det_item_fee_sumamt": cents_text(lines["det_item_fee_sumamt"]),
            "selfpay_prop": codes(lines["selfpay"], SELFPAY_PROP),
            "bilg_dr_codg": shared("atddr_no"),
            "fixmedins_code": shared("fixmedins_code"),
        }
    )


def spending(cols: dict[str, np.ndarray], k: int) -> pa.Table:
    """Benefit expenditure by insured region and fund, in cents (net of reversals)."""
    t = cols["insutype"]
    parts = [
        ("310_pool", np.where(t == EMPLOYEE, cols["hifp_pay"] + cols["hifob_pay"], 0)),
        ("310_acct", np.where(t != RESIDENT, cols["acct_pay"], 0)),
        ("390", np.where(t == RESIDENT, cols["hifp_pay"] + cols["hifmi_pay"], 0)),
        ("510", np.where(t == 2, cols["hifp_pay"], 0)),
    ]
    # Summed at once per region (a chunk holds one or a few): a row a settlement would
    # hold gigabytes at `medium` by the end.
    regions, at = distinct(cols["psn_admdvs"], return_inverse=True)
    out = {"admdvs": [], "k": [], "fund_type": [], "cents": []}
    for name, values in parts:
        sums = np.bincount(at, weights=values, minlength=len(regions))
        out["admdvs"].extend(regions.tolist())
        out["k"].extend([k] * len(regions))
        out["fund_type"].extend([name] * len(regions))
        out["cents"].extend(np.round(sums).astype(np.int64).tolist())
    return pa.table(out)
