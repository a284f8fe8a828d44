"""The simulated population, held as numbers; text is made only when a batch is written.

A person × region of enrollment is a row of small integer and date columns; the
certificate number, person number and name are derived from them with integer
arithmetic and Arrow kernels, because building millions of strings with NumPy's
`np.char` was the simulator's largest cost.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Insurance types (险种) and person categories of the national code lists.
INSUTYPES = np.array(["310", "390", "410", "510"])  # employee, resident, LTC, maternity
EMPLOYEE, RESIDENT, LTC, MATERNITY = range(4)
PSN_TYPES = np.array(["1101", "1102", "1501", "1502"])  # employed, retired, adult, child

_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_ID_CHECK = pa.array(list("10X98765432"))
_SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗")
_GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂")
# Every surname + two given characters, so a name is one index into this table.
NAMES = pa.array([s + a + b for s in _SURNAMES for a in _GIVEN for b in _GIVEN])


@dataclass
class Persons:
    """One entry per person × region of enrollment."""

    serial: np.ndarray  # int64: psn_no is the enrollment province then 14 digits of this
    admdvs: np.ndarray  # int32: pooling region of enrollment
    cert_admdvs: np.ndarray  # int32: region written in the certificate number (birthplace)
    brdy: np.ndarray  # datetime64[D]
    seq: np.ndarray  # int16 0..999: certificate sequence, odd for men
    name: np.ndarray  # int16 index into NAMES (12,500 names)
    insutype: np.ndarray  # int8 index into INSUTYPES
    psn_type: np.ndarray  # int8 index into PSN_TYPES
    insu_date: np.ndarray  # datetime64[D]

    def __len__(self) -> int:
        return len(self.serial)

    def take(self, idx: np.ndarray) -> Persons:
        return Persons(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @staticmethod
    def concat(parts: list[Persons]) -> Persons:
        return Persons(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Persons)}
        )

    @property
    def male(self) -> np.ndarray:
        return self.seq % 2 == 1


def codes(idx: np.ndarray, values: pa.Array, mask: np.ndarray | None = None) -> pa.Array:
    """Values by index into a small or shared table, as a dictionary array: no text is
    copied or formatted per row, and Parquet writes dictionary pages from it directly."""
    return pa.DictionaryArray.from_arrays(np.asarray(idx, dtype=np.int32), values, mask=mask)


def distinct(values: np.ndarray, return_inverse: bool = False):
    """`np.unique` of small non-negative integers (region codes), by counting instead of
    sorting: the same values (and inverse), without an n log n sort of every slab (the
    sorts were a tenth of the drawing thread's time at `medium`)."""
    v = np.asarray(values)
    lo = int(v.min()) if len(v) else 0
    if not len(v) or v.dtype.kind not in "iu" or lo < 0 or int(v.max()) - lo > 1 << 22:
        return np.unique(v, return_inverse=return_inverse)
    present = np.bincount((v - lo).astype(np.intp)) > 0
    uniq = (np.flatnonzero(present) + lo).astype(v.dtype)
    if not return_inverse:
        return uniq
    return uniq, (np.cumsum(present) - 1)[v - lo]


_GEND = pa.array(["1", "2"])


def gend_codes(seq: np.ndarray) -> pa.Array:
    """`1` men (odd sequence), `2` women."""
    return codes(seq % 2 == 0, _GEND)


def psn_numbers(admdvs: np.ndarray, serial: np.ndarray) -> pa.Array:
    """Province of enrollment then 14 digits: a 16-digit number, written as text."""
    return pa.array(admdvs.astype(np.int64) // 10_000 * 10**14 + serial).cast(pa.string())


def _distinct_sequences(base: np.ndarray, region, brdy, male) -> np.ndarray:
    """Certificate sequence slots (0..499) distinct among people drawn together who share
    region, birth date and sex (a random draw repeats them: the birthday problem), so no
    two persons get one certificate number. Each group starts at its first random draw."""
    n = len(base)
    order = np.lexsort((male, brdy.astype(np.int64), region))
    r, b, m = region[order], brdy[order], male[order]
    first = np.ones(n, dtype=bool)
    first[1:] = (r[1:] != r[:-1]) | (b[1:] != b[:-1]) | (m[1:] != m[:-1])
    starts = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    rank = np.arange(n) - starts[group]
    slots = np.empty(n, dtype=np.int64)
    slots[order] = (base[order][starts[group]] + rank) % 500
    return slots


def certificate_numbers(cert_admdvs: np.ndarray, brdy: np.ndarray, seq: np.ndarray) -> pa.Array:
    """GB 11643 resident ID numbers: region, birth date, sequence and check character.

    The weighted digit sum is three table lookups (region, date, sequence) rather than
    seventeen passes of digit arithmetic over every person.
    """
    day_no = (brdy - _EPOCH).astype(np.int64)
    region = cert_admdvs.astype(np.int64)
    codes, at = distinct(region, return_inverse=True)
    total = _digit_sum(codes, 6, 0)[at] + _DATE_SUM[day_no] + _SEQ_SUM[seq.astype(np.int64)]
    first17 = region * 10**11 + _DATE_NUM[day_no] * 1_000 + seq.astype(np.int64)
    check = _ID_CHECK.take(pa.array(total % 11))
    return pc.binary_join_element_wise(pa.array(first17).cast(pa.string()), check, "")


def _digit_sum(values: np.ndarray, width: int, offset: int) -> np.ndarray:
    """Weighted sum of the `width` digits of `values`, at ID positions offset.."""
    total = np.zeros(len(values), dtype=np.int64)
    rest = np.asarray(values, dtype=np.int64).copy()
    for weight in _ID_WEIGHTS[offset : offset + width][::-1]:
        total += rest % 10 * weight
        rest //= 10
    return total


def _with_check(first17: np.ndarray) -> pa.Array:
    check = _ID_CHECK.take(pa.array(_digit_sum(first17, 17, 0) % 11))
    return pc.binary_join_element_wise(pa.array(first17).cast(pa.string()), check, "")


# Birth dates from 1900 to 2099: YYYYMMDD and its weighted digit sum, by day number.
_EPOCH = np.datetime64("1900-01-01")
_DAYS = _EPOCH + np.arange(200 * 366).astype("timedelta64[D]")
_DATE_NUM = (
    (_DAYS.astype("datetime64[Y]").astype(np.int64) + 1970) * 10_000
    + (_DAYS.astype("datetime64[M]").astype(np.int64) % 12 + 1) * 100
    + (_DAYS - _DAYS.astype("datetime64[M]")).astype(np.int64)
    + 1
)
_DATE_SUM = _digit_sum(_DATE_NUM, 8, 6)
_SEQ_SUM = _digit_sum(np.arange(1000), 3, 14)


def check_characters(first17: list[str]) -> list[str]:
    """The GB 11643 check character of 17-digit strings (for tests and tools)."""
    digits = np.array([int(s) for s in first17], dtype=np.int64)
    return [s[-1] for s in _with_check(digits).to_pylist()]


def person_names(name: np.ndarray) -> pa.Array:
    return NAMES.take(pa.array(name))


def draw(
    rng: np.random.Generator,
    admdvs: int | np.ndarray,
    n: int,
    serial0: int,
    first: np.datetime64,
    employee_share_of_adults: float,
) -> Persons:
    """New residents of a region (or of each region in `admdvs`, one per person): age and
    sex from a flat-topped pyramid, scheme by age."""
    region = np.broadcast_to(np.asarray(admdvs, dtype=np.int32), (n,)).copy()
    # Age in years: a pyramid that thins after 60 (7th census shape, coarsely).
    age_years = np.where(
        rng.random(n) < 0.8, rng.uniform(0, 60, n), 60 + rng.exponential(10, n)
    ).clip(0, 99)
    age_days = (age_years * 365.25).astype(np.int64)
    brdy = first - age_days.astype("timedelta64[D]")
    male = rng.random(n) < 0.51  # 7th census: 51.2% men
    seq = _distinct_sequences(rng.integers(0, 500, n), region, brdy, male) * 2 + male
    adult = age_years >= 18
    employee = adult & (age_years < 75) & (rng.random(n) < employee_share_of_adults)
    retired = age_years >= 60
    psn_type = np.where(employee, np.where(retired, 1, 0), np.where(adult, 2, 3)).astype(np.int8)
    since = first - rng.integers(30, 20 * 365, n).astype("timedelta64[D]")
    return Persons(
        serial=np.arange(serial0, serial0 + n, dtype=np.int64),
        admdvs=region,
        cert_admdvs=region.copy(),
        brdy=brdy,
        seq=seq.astype(np.int16),
        name=rng.integers(0, len(NAMES), n).astype(np.int16),
        insutype=np.where(employee, EMPLOYEE, RESIDENT).astype(np.int8),
        psn_type=psn_type,
        insu_date=np.maximum(brdy, since),
    )
