"""Synthetic source extracts in the landing layout of the source contract.

All nine feeds for the pooling regions of `regions.csv` (every province's capital
and the five cities specifically designated in the state plan), calibrated to the
published figures of `calibration.py`, with planted defects and their ground truth
(`defects.py`). Month by month, region by region: one region-month of persons'
visits in memory at a time; settlements are appended to the batch of the region
where care was given, as that region's platform sends them. Vectorised with NumPy
and Arrow: no Python loop per row.
"""

from __future__ import annotations

import csv
import gzip
import shutil
import sys
import zlib
from collections import Counter, defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from yibao.simulate import claims, defects
from yibao.simulate.people import (
    EMPLOYEE,
    INSUTYPES,
    LTC,
    MATERNITY,
    PSN_TYPES,
    RESIDENT,
    Persons,
    certificate_numbers,
    check_characters,
    codes,
    draw,
    gend_codes,
    person_names,
    psn_numbers,
)

# Persons simulated per resident, by tier (sizes in docs/simulator.md).
SCALE_FRACTION = {"tiny": 2e-5, "small": 8e-5, "medium": 3.8e-3, "large": 1.5e-2}
# Pooling regions simulated by tier: `core` = the capitals and the five cities
# specifically designated in the state plan (CI in seconds), `all` = every one.
TIER_REGIONS = {"tiny": "core", "small": "all", "medium": "all", "large": "all"}
# Residents sampled per region at least, so that a small region's rates are not noise.
MIN_SAMPLE = 100
# Share of residents insured: 2024 bulletin, 1.327 billion insured, ~95% of residents.
COVERAGE_TARGET = 0.95
# Employee scheme (310) share of the insured: 37,948 万 of 132,662 万 in 2024 (bulletin);
# only adults of working age are employees, ~70% of residents (7th census, 2020).
EMPLOYEE_SHARE = 0.286
WORKING_AGE_SHARE = 0.70
# Maternity insurance: 25,300 万 of 27,492 万 employed employees (NHSA 2025), 92%. The
# simulator's employed share of the insured runs above the bulletin's (its employees are
# drawn from ages 18-74), so maternity enrolment is set on the insured: 82 in 100.
MATERNITY_PERCENT = 82
# Monthly churn of the simulator (assumed): terminations and new enrollments.
MONTHLY_TERMINATION = 0.004
MONTHLY_NEW = 0.005

_ADMDVS = 100_000  # national reference feeds use admdvs=100000
# Quote only where needed, as most exporters do (and it is faster to write and read).
_CSV_OPTIONS = pacsv.WriteOptions(quoting_style="needed")
# Parquet columns worth a dictionary (few distinct values); ids and amounts are not.
_LOW_CARDINALITY = {
    "psn_cert_type", "gend", "insutype", "psn_type", "psn_insu_stas", "insuplc_admdvs",
    "med_type", "mdtrtarea_admvs", "fixmedins_code", "diag_code", "oprn_oprt_code",
    "refd_setl_flag", "drg_dip_code", "clr_type", "hilist_code", "hilist_name",
    "med_chrgitm_type", "chrgitm_lv", "selfpay_prop", "bilg_dr_codg", "atddr_no",
}  # fmt: skip


@dataclass(frozen=True)
class Region:
    admdvs: str
    name_zh: str
    name_en: str
    level: str
    parent: str
    resident_pop: int | None
    ltc_pilot: bool
    core: bool = False
    ltc_residents: bool = False  # the pilot also enrolls insured residents, not only employees


def load_regions() -> list[Region]:
    text = resources.files("yibao.simulate").joinpath("regions.csv").read_text("utf-8")
    return [
        Region(
            r["admdvs"],
            r["name_zh"],
            r["name_en"],
            r["level"],
            r["parent"],
            int(r["resident_pop_2024"]) if r["resident_pop_2024"] else None,
            r["ltc_pilot"] in ("1", "2"),
            r["core"] == "1",
            r["ltc_pilot"] == "2",
        )
        for r in csv.DictReader(text.splitlines())
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
        current = _next_month(current)
    return months


def _next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def id_check_digits(first17: np.ndarray) -> np.ndarray:
    """GB 11643 check character for an array of 17-digit strings."""
    return np.array(check_characters(list(first17)))


# ------------------------------------------------------------------------------ writing


class Batches:
    """Open batch files of the current month, appended chunk by chunk, renamed when whole.

    Chunks are buffered per batch and written in slabs of `FLUSH_ROWS`: a write per small
    chunk made a Parquet row group (and Arrow's per-call cost) per chunk. A reader never
    sees half a batch: data goes to `<name>.part` first.
    """

    FLUSH_ROWS = 20_000
    # Rows handed to the writer threads and not yet written, at most. Drawing comes in
    # bursts (a slab's emit flushes hundreds of batches, a month's end closes ~1,800
    # files): a queue of four tasks made the drawing thread wait through each burst and
    # the writer through each draw (a third of the run at `medium`). A bound in rows lets
    # both run and still bounds memory (each queued slice keeps its slab alive until the
    # writer has copied it: at `large` 0.5 million rows cost 20% more time, 1.5 million
    # 100 MB more memory).
    QUEUE_ROWS = 1_000_000
    QUEUE_TASKS = 10_000  # closes carry few rows; bounds the queue's own bookkeeping
    # Writer threads. Encoding Parquet costs more than drawing the rows: with one writer
    # the drawing thread waited on it and the run used 1.4 of 2 cores. Each file keeps to
    # one writer (chosen from its path), so its chunks are written in order.
    WRITERS = 2
    # Rows buffered over all open batches at most: with 700 batches open (357 regions ×
    # settlements and fee lines) the per-batch threshold alone would let gigabytes wait.
    # 350,000 with the deeper queue above keeps `large` under its old peak (2.8 GB).
    BUDGET_ROWS = 350_000

    def __init__(self, landing: Path, fmt: str) -> None:
        self.landing = landing
        self.fmt = fmt
        self.open: dict[str, _Open] = {}
        self.buffered = 0
        self.counts: Counter = Counter()
        # Encoding and writing run on other threads (Arrow releases the GIL) while NumPy
        # draws the next region-month.
        self.pools = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"yibao-write-{i}")
            for i in range(self.WRITERS)
        ]
        self.dirs: set[Path] = set()  # folders made already: a mkdir per batch cost ~2 s
        self.pending: deque[tuple[Future, int]] = deque()  # in the order submitted
        self.queued = 0  # rows in `pending`

    def drain(self) -> None:
        """Wait until everything handed to the writer threads is on disk."""
        while self.pending:
            self._wait_oldest()

    def _wait_oldest(self) -> None:
        future, rows = self.pending.popleft()
        self.queued -= rows
        future.result()  # a writer's error surfaces here

    def shutdown(self) -> None:
        self.drain()
        for pool in self.pools:
            pool.shutdown()

    def path(self, feed: str, month: date, admdvs, stem: str) -> str:
        ext = "parquet" if self.fmt == "parquet" else "csv"
        return f"{feed}/period={month:%Y-%m}/admdvs={admdvs}/{stem}.{ext}"

    def append(self, rel: str, table: pa.Table, start: int = 0, stop: int | None = None) -> int:
        """Append rows `start:stop` of `table` and return the number of data rows the batch
        held before."""
        stop = table.num_rows if stop is None else stop
        rows = int(stop - start)  # bounds come from NumPy; the counts go into JSON reports
        batch = self.open.get(rel)
        if batch is None:
            final = self.landing / rel
            if final.parent not in self.dirs:
                final.parent.mkdir(parents=True, exist_ok=True)
                self.dirs.add(final.parent)
            tmp = final.with_name(final.name + ".part")
            batch = self.open[rel] = _Open(tmp, table.schema, self.fmt)
        before = batch.rows
        if rows:
            # The writer thread copies the rows out (`_own`): copying here was a sixth of
            # the drawing thread's work, on the critical path.
            self._submit(rel, batch.stage, table, start, stop, rows=rows)
            batch.buffered += rows
            batch.rows += rows
            self.buffered += rows
            if batch.buffered >= self.FLUSH_ROWS:
                self._flush(rel, batch)
            if self.buffered > self.BUDGET_ROWS:  # the biggest buffers go first
                for name, other in sorted(self.open.items(), key=lambda b: -b[1].buffered):
                    if self.buffered <= self.BUDGET_ROWS // 2:
                        break
                    self._flush(name, other)
        self.counts[rel.split("/", 1)[0]] += rows
        return before

    def write(self, rel: str, table: pa.Table) -> None:
        self.append(rel, table)
        self.close(rel)

    def close(self, rel: str) -> None:
        batch = self.open.pop(rel)
        rows = batch.buffered
        self.buffered -= rows
        self._submit(rel, batch.finish, self.landing / rel, rows=rows)

    def _flush(self, rel: str, batch: _Open) -> None:
        rows, batch.buffered = batch.buffered, 0
        self.buffered -= rows
        self._submit(rel, batch.flush, rows=rows)

    def _submit(self, rel: str, fn, *args, rows: int = 0) -> None:
        """Run `fn(*args)` on the writer of file `rel`, after everything submitted for it
        before."""
        while self.pending and self.pending[0][0].done():
            self._wait_oldest()
        while self.pending and (
            self.queued + rows > self.QUEUE_ROWS or len(self.pending) >= self.QUEUE_TASKS
        ):
            self._wait_oldest()
        pool = self.pools[zlib.crc32(rel.encode()) % len(self.pools)]
        self.pending.append((pool.submit(fn, *args), rows))
        self.queued += rows

    def after(self, rel: str, fn, *args) -> None:
        """Run `fn(*args)` once file `rel` is on disk, without waiting for it here."""
        self._submit(rel, fn, *args)

    def close_all(self) -> None:
        for rel in sorted(self.open):
            self.close(rel)


@dataclass
class _Open:
    tmp: Path
    schema: pa.Schema
    fmt: str
    writer: object = None  # opened on the writer thread at the first flush
    rows: int = 0  # appended so far (drawing thread)
    buffered: int = 0  # appended since the last flush (drawing thread)
    staged: list = field(default_factory=list)  # copied rows waiting (writer thread)

    def stage(self, table: pa.Table, start: int, stop: int) -> None:
        self.staged.append(_own(table, start, stop))

    def flush(self) -> None:
        buffer, self.staged = self.staged, []
        if self.writer is None:
            # A file writer holds buffers of its own: open only while the batch is written
            # (hundreds of batches of a month wait for their rows at once).
            if self.fmt == "parquet":
                dictionary = [n for n in self.schema.names if n in _LOW_CARDINALITY]
                self.writer = pq.ParquetWriter(
                    self.tmp, self.schema, compression="lz4", use_dictionary=dictionary,
                    write_statistics=False,
                )  # fmt: skip
            else:
                self.writer = pacsv.CSVWriter(self.tmp, self.schema, write_options=_CSV_OPTIONS)
        if buffer:
            table = pa.concat_tables(buffer)
            if self.fmt != "parquet":  # Parquet takes the chunks as they are: no second copy
                # One chunk: pyarrow 18 repeats the CSV header after an empty leading chunk.
                table = table.combine_chunks()
            self.writer.write_table(table)

    def finish(self, final: Path) -> None:
        self.flush()
        self.writer.close()
        self.tmp.replace(final)


def _in_ltc(p: Persons, ltc_codes: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Long-term care (410): employees of pilot cities, and the insured residents of the pilots
    that enroll them too."""
    employees, residents = ltc_codes
    return ((p.insutype == EMPLOYEE) & np.isin(p.admdvs, employees)) | (
        (p.insutype == RESIDENT) & np.isin(p.admdvs, residents)
    )


def _enrollment_table(
    p: Persons, stas: np.ndarray, paus: np.ndarray, updt: np.ndarray, ltc_codes
) -> tuple[pa.Table, np.ndarray]:
    """Rows of psn_insu: each basic enrollment, plus maternity (510) for employed employees
    and long-term care (410) in pilot cities, which follow it within each region. Rows
    come ordered by region; returns the table and each row's region."""
    employed = (p.insutype == EMPLOYEE) & (p.psn_type == 0) & (p.seq % 100 < MATERNITY_PERCENT)
    parts = [np.arange(len(p))]
    kinds = [p.insutype.astype(np.int64)]
    parts.append(np.flatnonzero(employed))
    kinds.append(np.full(len(parts[-1]), MATERNITY))
    parts.append(np.flatnonzero(_in_ltc(p, ltc_codes)))
    kinds.append(np.full(len(parts[-1]), LTC))
    rows = np.concatenate(parts)
    insutype = np.concatenate(kinds)
    by_region = np.argsort(p.admdvs[rows], kind="stable")
    rows, insutype = rows[by_region], insutype[by_region]
    paus = paus[rows]
    at = pa.array(rows)
    # Text of each person is made once; the maternity and long-term-care rows copy it.
    return pa.table(
        {
            "psn_no": psn_numbers(p.admdvs, p.serial).take(at),
            "psn_cert_type": codes(np.zeros(len(rows)), _CERT_TYPES),
            "certno": certificate_numbers(p.cert_admdvs, p.brdy, p.seq).take(at),
            "psn_name": person_names(p.name).take(at),
            "gend": gend_codes(p.seq[rows]),
            "brdy": pa.array(p.brdy[rows]),
            "insutype": codes(insutype, _INSUTYPE_CODES),
            "psn_type": codes(p.psn_type[rows], _PSN_TYPE_CODES),
            "psn_insu_stas": pa.array(stas[rows]),
            "psn_insu_date": pa.array(p.insu_date[rows]),
            "paus_insu_date": pa.array(paus, mask=np.isnat(paus)),
            "insuplc_admdvs": pa.array(p.admdvs[rows]).cast(pa.string()),
            "updt_time": pa.array(updt[rows]),
        }
    ), p.admdvs[rows]


_CERT_TYPES = pa.array(["01"])
_INSUTYPE_CODES = pa.array(INSUTYPES)
_PSN_TYPE_CODES = pa.array(PSN_TYPES)


def _sampled(region: Region, fraction: float) -> int:
    return max(MIN_SAMPLE, round(region.resident_pop * fraction))


def _never(n: int) -> np.ndarray:
    return np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")


def _timestamps(rng: np.random.Generator, month: date, n: int) -> np.ndarray:
    start = np.datetime64(month, "s")
    return start + rng.integers(0, 28 * 86400, n).astype("timedelta64[s]")


def _all_text(table: pa.Table) -> pa.Table:
    return pa.table(
        {
            name: col.cast(pa.string())
            for name, col in zip(table.column_names, table.columns, strict=True)
        }
    )


def _progress(total: int, enabled: bool | None):
    from tqdm import tqdm

    show = sys.stderr.isatty() if enabled is None else enabled
    return tqdm(total=total, disable=not show, unit="region-month", desc="generate", leave=False)


# --------------------------------------------------------------------------- the world


def generate(
    home: Path,
    scale: str = "tiny",
    months: str = "2024-01:2024-03",
    provinces: list[str] | None = None,
    seed: int = 20240101,
    rates: dict[str, float] | None = None,
    fmt: str = "mixed",
    progress: bool | None = None,
    regions: str | None = None,
) -> dict[str, int]:
    """Write the landing files and the ground truth; return row counts per feed.

    fmt: `mixed` (CSV, with the planted delivery variants), `csv` or `parquet` (every
    batch in that format, no delivery or row-level defects: for benchmarks).
    regions: `core` or `all` pooling regions; by default the tier's (`TIER_REGIONS`).
    """
    if scale not in SCALE_FRACTION:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALE_FRACTION)}")
    if fmt not in ("mixed", "csv", "parquet"):
        raise ValueError(f"unknown format {fmt!r}; choose mixed, csv or parquet")
    rates = dict(defects.RATES if rates is None else rates)
    if fmt != "mixed":
        rates.update({k: 0.0 for k in (*defects.ROW_DEFECTS, "gb18030", "utf8_bom", "crlf",
                                       "gzip", "parquet")})  # fmt: skip
    periods = month_range(months)
    which = regions or TIER_REGIONS[scale]
    if which not in ("core", "all"):
        raise ValueError(f"unknown region set {which!r}; choose core or all")
    regions = load_regions()
    known = {r.admdvs[:2] for r in regions if r.level == "province"}
    wanted = set(provinces or known)
    unknown = wanted - known
    if unknown:
        raise ValueError(
            f"no regions known for province code(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(known))}"
        )
    pooling = [
        r for r in regions
        if r.level == "prefecture" and r.admdvs[:2] in wanted and (which == "all" or r.core)
    ]  # fmt: skip
    region_codes = [int(r.admdvs) for r in pooling]
    ltc = {int(r.admdvs): r.ltc_pilot for r in pooling}
    ltc_codes = (
        np.array([int(r.admdvs) for r in pooling if r.ltc_pilot], dtype=np.int32),
        np.array([int(r.admdvs) for r in pooling if r.ltc_residents], dtype=np.int32),
    )
    # A province's pooling regions are simulated together (one draw of visits per slab of
    # its persons), and their rows split into each region's batches: 357 regions cost
    # about what 31 do.
    groups: dict[int, list[int]] = defaultdict(list)
    for code in sorted(region_codes):
        groups[code // 10_000].append(code)
    # Where patients from other provinces are treated: the core cities, by population.
    hub_regions = [r for r in pooling if r.core] or pooling
    hubs = (
        np.array([int(r.admdvs) for r in hub_regions], dtype=np.int64),
        np.array([r.resident_pop for r in hub_regions], dtype=float),
    )
    rng = np.random.default_rng(seed)
    claims_rng = np.random.default_rng([seed, 1])
    fraction = SCALE_FRACTION[scale]
    landing, truth_dir, outbox = home / "landing", home / "truth", home / "outbox"
    batches = Batches(landing, "parquet" if fmt == "parquet" else "csv")
    truth = defects.Truth()

    # Residents of the simulated world: the denominator scales with the sample.
    for year in sorted({p.year for p in periods}):
        pop = pa.table(
            {
                "admdvs": [r.admdvs for r in pooling],
                "year": [str(year)] * len(pooling),
                "resident_pop": [_sampled(r, fraction) for r in pooling],
            }
        )
        batches.write(batches.path("population", date(year, 1, 1), _ADMDVS, f"pop-{year}"), pop)

    share_of_adults = EMPLOYEE_SHARE / WORKING_AGE_SHARE
    start = np.datetime64(periods[0], "D")
    enrolled: dict[int, Persons] = {}
    serial = 1
    for r in pooling:
        n = round(_sampled(r, fraction) * COVERAGE_TARGET)
        enrolled[int(r.admdvs)] = draw(rng, int(r.admdvs), n, serial, start, share_of_adults)
        serial += n

    # Duplicate enrollment: a person enrolled again, as a resident, in the next region.
    if len(region_codes) > 1:
        originals = dict(enrolled)
        for i, code in enumerate(region_codes):
            # As many as the rate of this region's own size: a small region next to a
            # big one would otherwise take in more duplicates than it has residents.
            src = originals[region_codes[(i + 1) % len(region_codes)]]
            n_dup = min(len(src), rng.binomial(len(originals[code]), rates["duplicate_enrollment"]))
            dup = src.take(np.sort(rng.choice(len(src), n_dup, replace=False)))
            dup.serial = np.arange(serial, serial + len(dup), dtype=np.int64)
            serial += len(dup)
            dup.admdvs = np.full(len(dup), code, dtype=np.int32)
            dup.insutype = np.full(len(dup), RESIDENT, dtype=np.int8)
            dup.psn_type = np.where(dup.psn_type == 3, 3, 2).astype(np.int8)
            # Enrolled again later than the first time (halfway to the window's start, no
            # draw): the later enrollment is the duplicate, as the rule base judges it.
            wait = np.maximum(1, (start - dup.insu_date).astype(np.int64) // 2)
            dup.insu_date = dup.insu_date + wait.astype("timedelta64[D]")
            enrolled[code] = Persons.concat([enrolled[code], dup])
            truth.add("psn_insu", psn_numbers(dup.admdvs, dup.serial), "duplicate_enrollment")
        del originals  # else the first population stays in memory beside its copy

    # Institutions; one hospital a region loses its agreement mid-window (when there is one).
    institutions = {
        code: claims.make_institutions(claims_rng, code, len(e)) for code, e in enrolled.items()
    }
    if len(periods) >= 2:
        mid = periods[len(periods) // 2]
        for inst in institutions.values():
            inst.agmt_end[inst.hospitals()[1]] = np.datetime64(date(mid.year, mid.month, 15))

    people_of: dict[int, Persons] = {
        prov: Persons.concat([enrolled.pop(code) for code in codes])
        for prov, codes in groups.items()
    }
    active = {prov: np.ones(len(e), dtype=bool) for prov, e in people_of.items()}
    pending: dict[int, list] = defaultdict(list)
    spent: list[pa.Table] = []
    insured: dict[tuple[int, int], int] = {}
    abused: dict[tuple[int, int], list[np.ndarray]] = defaultdict(list)
    setl_serial = 1
    # Re-deliveries: one enrollment batch re-sent as is, one settlement batch corrected.
    resend_same = batches.path(
        "psn_insu", periods[0], region_codes[0], f"psn_insu-{region_codes[0]}-{periods[0]:%Y%m}"
    )
    resend_fixed = batches.path(
        "setl", periods[-1], region_codes[0], f"setl-{region_codes[0]}-{periods[-1]:%Y%m}"
    )
    clean = Batches(outbox, "csv") if fmt == "mixed" else None
    short_rows: dict[str, list[np.ndarray]] = defaultdict(list)
    row_defects: set[str] = set()

    bar = _progress(len(periods) * len(groups), progress)
    for k, month in enumerate(periods):
        month_start = np.datetime64(month, "D")
        for prov, prov_codes in groups.items():
            people = people_of[prov]
            rels = [
                batches.path("psn_insu", month, c, f"psn_insu-{c}-{month:%Y%m}") for c in prov_codes
            ]
            if k == 0:  # first period: full load, in slabs of persons
                for part in _chunks(len(people)):
                    n = len(part)
                    _by_region(batches, rels, prov_codes, *_enrollment_table(
                        people.take(part), np.full(n, "1"), _never(n),
                        _timestamps(rng, month, n), ltc_codes,
                    ))  # fmt: skip
            else:
                leaving = rng.random(len(people)) < MONTHLY_TERMINATION
                stop = np.flatnonzero(active[prov] & leaving)
                active[prov][stop] = False
                updt = _timestamps(rng, month, len(stop))
                ended = people.take(stop)
                ended_table, ended_at = _enrollment_table(
                    ended, np.full(len(stop), "4"), updt.astype("datetime64[D]"), updt, ltc_codes
                )
                per_region = np.bincount(
                    np.searchsorted(prov_codes, people.admdvs), minlength=len(prov_codes)
                )
                n_new = rng.binomial(per_region, MONTHLY_NEW)
                new = draw(rng, np.repeat(prov_codes, n_new), int(n_new.sum()), serial, month_start,
                           share_of_adults)  # fmt: skip
                new.insu_date = np.full(len(new), month_start)
                serial += len(new)
                people_of[prov] = people = Persons.concat([people, new])
                active[prov] = np.concatenate([active[prov], np.ones(len(new), dtype=bool)])
                joined_table, joined_at = _enrollment_table(
                    new, np.full(len(new), "1"), _never(len(new)),
                    _timestamps(rng, month, len(new)), ltc_codes,
                )  # fmt: skip
                order = np.argsort(np.concatenate([ended_at, joined_at]), kind="stable")
                _by_region(
                    batches, rels, prov_codes,
                    pa.concat_tables([ended_table, joined_table]).take(pa.array(order)),
                    np.concatenate([ended_at, joined_at])[order],
                )  # fmt: skip
            for rel in rels:
                batches.close(rel)
                if clean is not None and rel == resend_same:
                    batches.drain()  # the copy is of the file as delivered
                    (outbox / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(landing / rel, outbox / rel)

            basic = active[prov] & np.isin(people.insutype, [EMPLOYEE, RESIDENT])
            counts_now = np.bincount(
                np.searchsorted(prov_codes, people.admdvs[basic]), minlength=len(prov_codes)
            )
            for code, count in zip(prov_codes, counts_now, strict=True):
                insured[(code, k)] = int(count)
            # A big province's month is drawn in slabs of persons: memory stays bounded at
            # any tier, and persons' visits do not depend on each other.
            for part in _chunks(len(people), np.flatnonzero(basic), at_least_one=False):
                setl_serial = _settle(
                    claims_rng, people.take(part), month, k, periods, institutions, rates,
                    setl_serial, truth, abused, pending, spent, batches, clean, short_rows,
                    row_defects, resend_fixed, hubs,
                )  # fmt: skip
            bar.update(1)
        for rev, rev_lines in pending.pop(k, []):
            _emit(batches, clean, rev, rev_lines, month, k, rates, claims_rng, truth, short_rows,
                      row_defects, resend_fixed)  # fmt: skip
            spent.append(claims.spending(rev, k))
        batches.close_all()
        if clean is not None:
            clean.close_all()
        for rel, rows in short_rows.items():
            # On the writer thread, after the file is whole: the next month is drawn meanwhile.
            batches.after(rel, defects.shorten_rows, landing / rel, np.concatenate(rows))
        short_rows.clear()
        for code in region_codes:
            inst = institutions[code]
            batches.write(
                batches.path("fixmedins", month, code, f"fixmedins-{code}-{month:%Y%m}"),
                inst.table(month),
            )
            batches.write(
                batches.path("practitioner", month, code, f"practitioner-{code}-{month:%Y%m}"),
                inst.practitioners(),
            )
    bar.close()

    ltc_members: dict[int, int] = {}
    for prov, prov_codes in groups.items():
        people = people_of[prov]
        at = np.searchsorted(prov_codes, people.admdvs[_in_ltc(people, ltc_codes)])
        members = np.bincount(at, minlength=len(prov_codes)).tolist()
        ltc_members.update(zip(prov_codes, members, strict=True))
    _ledger(rng, batches, periods, region_codes, ltc, pa.concat_tables(spent), ltc_members)
    _cases(rng, batches, periods, institutions, insured, abused)
    batches.shutdown()
    counts = dict(batches.counts)
    if clean is not None:
        clean.shutdown()
    if fmt == "mixed":
        _missing_column(batches, periods, region_codes, truth)
        renamed = _deliveries(rng, landing, rates, truth, row_defects, {resend_same, resend_fixed})
        truth.rename_batches(renamed)
        for rel, kind in ((resend_same, "resent_unchanged"), (resend_fixed, "resent_corrected")):
            if (outbox / rel).exists():
                truth.add(rel.split("/", 1)[0], [rel], kind, rel)
    truth.write(truth_dir / "defects.csv")
    return {feed: counts.get(feed, 0) for feed in (
        "psn_insu", "population", "setl", "fee_list", "fixmedins", "practitioner", "fund_ledger",
        "supervision_case", "fund_recovery")}  # fmt: skip


def _settle(claims_rng, persons, month, k, periods, institutions, rates, setl_serial,
            truth, abused, pending, spent, batches, clean, short_rows, row_defects,
            resend_fixed, hubs) -> int:  # fmt: skip
    """One slab of a province-month's insured persons: visits, planted defects, fee lines,
    reversals for later months, and the batches of the treating regions. Returns the
    next free settlement serial."""
    month_end = np.datetime64(_next_month(month), "D")
    cols = claims.settlements(
        claims_rng, persons, month, k, institutions, setl_serial,
        rates["after_agreement_end"], hubs,
    )  # fmt: skip
    setl_serial += len(cols["serial"])
    cols, planted, plan, setl_serial = defects.plant_visits(
        claims_rng, cols, k, month_end, institutions, rates, setl_serial, truth
    )
    lines = claims.fee_lines(claims_rng, cols)
    defects.plant_lines(claims_rng, lines, len(cols["serial"]), plan)
    for treat in np.unique(cols["treat"][planted]):
        abused[(int(treat), k)].append(cols["inst_serial"][planted & (cols["treat"] == treat)])
    lag, rev, rev_lines = claims.reversals(claims_rng, cols, lines, setl_serial, ~planted)
    setl_serial += len(rev["serial"])
    arrives = (lag > 0) & (k + lag < len(periods))
    truth.add("setl", claims.ids("S", rev["serial"]).filter(pa.array(arrives)), "late_reversal")
    for later in np.unique(lag):
        if k + later < len(periods):  # else it arrives after the simulated window
            rows = np.flatnonzero(lag == later)
            sub = claims.take(rev_lines, np.isin(rev_lines["setl_row"], rows))
            sub["setl_row"] = np.searchsorted(rows, sub["setl_row"])
            pending[k + int(later)].append((claims.take(rev, rows), sub))
    _emit(batches, clean, cols, lines, month, k, rates, claims_rng, truth, short_rows,
              row_defects, resend_fixed)  # fmt: skip
    spent.append(claims.spending(cols, k))
    return setl_serial


def _chunks(
    n: int, rows: np.ndarray | None = None, size: int = 200_000, at_least_one: bool = True
) -> list[np.ndarray]:
    """Slabs of at most `size` rows; one empty slab for none when `at_least_one` (so that
    an empty batch still gets its header)."""
    rows = np.arange(n) if rows is None else rows
    return [rows[i : i + size] for i in range(0, max(len(rows), int(at_least_one)), size)]


def _emit(batches, clean, cols, lines, month, k, rates, rng, truth, short_rows, row_defects,
          resend_fixed) -> None:  # fmt: skip
    """Append a region's settlements and fee lines to the batches of the treating regions.

    Text is made once for the slab, sorted by treating region; each batch gets its rows
    as a table of their own (small per-batch tables made Arrow's per-call cost dominate).
    """
    n = len(cols["serial"])
    order = np.argsort(cols["treat"], kind="stable")
    cols = claims.take(cols, order)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    line_pos = position[lines["setl_row"]]
    line_order = np.argsort(line_pos, kind="stable")
    lines = claims.take(lines, line_order)
    lines["setl_row"] = line_pos[line_order]
    treats, first = np.unique(cols["treat"], return_index=True)
    bounds = np.append(first, n)
    line_bounds = np.searchsorted(lines["setl_row"], bounds)
    setl = claims.setl_table(cols)
    fee = claims.fee_table(lines, cols, setl)
    if any(rates[kind] for kind in defects.ROW_DEFECTS) or clean is not None:
        setl = _all_text(setl)  # broken values are text; so is every column then
    rels = [batches.path("setl", month, t, f"setl-{t}-{month:%Y%m}") for t in treats]
    # The batch re-sent corrected must have something to correct.
    force = None
    if clean is not None and resend_fixed in rels:
        i = rels.index(resend_fixed)
        force = np.arange(bounds[i], bounds[i + 1])
        clean.append(resend_fixed, setl, bounds[i], bounds[i + 1])
    corrupted, picked = defects.corrupt_rows(rng, setl, np.datetime64(month, "D"), rates, force)
    ids = setl.column("setl_id")
    for i, treat in enumerate(treats):
        a, b = bounds[i], bounds[i + 1]
        rel = rels[i]
        before = batches.append(rel, corrupted, a, b)
        for kind, at in picked.items():
            mine = at[(at >= a) & (at < b)]
            if len(mine):
                row_defects.add(rel)
                truth.add("setl", ids.take(pa.array(mine)), kind, rel)
                if kind == "wrong_field_count":
                    short_rows[rel].append(before + mine - a)
        batches.append(
            batches.path("fee_list", month, treat, f"fee_list-{treat}-{month:%Y%m}"),
            fee,
            line_bounds[i],
            line_bounds[i + 1],
        )


def _by_region(batches: Batches, rels: list[str], codes: list[int], table: pa.Table,
               region: np.ndarray) -> None:  # fmt: skip
    """Append rows ordered by region to the batch of each region (`rels` as `codes`); a
    region without rows still gets its batch (a header only)."""
    bounds = np.searchsorted(region, codes + [codes[-1] + 1])
    for i, rel in enumerate(rels):
        batches.append(rel, table, bounds[i], bounds[i + 1])


def _own(table: pa.Table, start: int, stop: int) -> pa.Table:
    """Rows start:stop as a table of their own: a zero-copy slice would keep the whole
    region-month alive in the buffer of every batch it touched (gigabytes at `medium`)."""
    if start == 0 and stop == table.num_rows:
        return table
    return table.take(pa.array(np.arange(start, stop)))


def resend(home: Path) -> list[str]:
    """Deliver the re-sent batches waiting in `<home>/outbox` (same path, into landing)."""
    outbox, landing = home / "outbox", home / "landing"
    sent = []
    for path in sorted(p for p in outbox.rglob("*") if p.is_file()) if outbox.exists() else []:
        rel = path.relative_to(outbox).as_posix()
        target = landing / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        shutil.copyfile(path, tmp)
        tmp.replace(target)
        path.unlink()
        sent.append(rel)
    return sent


# Fund income over benefit expenditure and months of reserve at the start, per fund
# (2024 bulletin: UEBMI pooled 17,342/13,223 and 30,446 cumulative; personal accounts
# 6,390/5,880 and 14,472; resident 11,181/10,661 and ~8,183; maternity and long-term
# care assumed).
FUND_INCOME_RATIO = {"310_pool": 1.31, "310_acct": 1.087, "390": 1.049, "510": 1.05, "ltc": 1.2}
FUND_RESERVE_MONTHS = {"310_pool": 27.6, "310_acct": 29.5, "390": 9.2, "510": 6.0, "ltc": 12.0}
# Resident fund income: individual contributions ~37%, fiscal subsidy ~63% (2024 rates
# of 400 and 670 yuan a head).
RESIDENT_SUBSIDY_SHARE = 0.63
ANNUAL_INTEREST = 0.015  # assumed deposit rate of fund balances
# Long-term care benefits per participant and month, in yuan (assumed).
LTC_BENEFIT_PER_PARTICIPANT = 8.0
# Recovered funds: 161.3 亿 in H1 2025 over ~13.27 亿 insured, ~2.03 yuan per insured
# person per month, from 335,000 institutions inspected: ~48,150 yuan per inspection.
RECOVERED_PER_INSURED_MONTH = 2.03
RECOVERED_PER_CASE = 48_150
RECOVERED_SHARE = 0.8  # of the involved amount (assumed)
CASE_SIGMA = 0.6
CASE_SOURCES = {
    "smart_monitoring": 0.30, "routine": 0.30, "special_campaign": 0.15,
    "flight_inspection": 0.05, "self_inspection": 0.15, "report": 0.05,
}  # fmt: skip
VIOLATIONS = ["fictitious_hospitalisation", "split_charging", "over_treatment",
              "excluded_item_billed", "upcoding", "data_quality"]  # fmt: skip
ACTIONS = ["none", "warning", "agreement_suspended", "agreement_terminated", "referred_police"]
LEDGER_FIELDS = ["bal_open", "inc_contrib", "inc_subsidy", "inc_interest", "inc_other",
                 "exp_benefit", "exp_other", "bal_close"]  # fmt: skip


def _ledger(rng, batches: Batches, periods, codes, ltc, spent: pa.Table, ltc_members) -> None:
    """Each fund's month: income follows the year's ratio to spending, balances chain."""
    sums = spent.group_by(["admdvs", "k", "fund_type"]).aggregate([("cents", "sum")])
    key = zip(*(sums.column(n).to_pylist() for n in ("admdvs", "k", "fund_type")), strict=True)
    spent_by = dict(zip(key, sums.column("cents_sum").to_pylist(), strict=True))
    n_months = len(periods)
    for code in codes:
        funds = [f for f in FUND_INCOME_RATIO if f != "ltc" or ltc[code]]
        n = len(funds)
        exp = np.zeros((n, n_months), dtype=np.int64)
        for i, fund in enumerate(funds):
            if fund == "ltc":
                participants = ltc_members[code]
                exp[i] = round(participants * LTC_BENEFIT_PER_PARTICIPANT * 100)
            else:
                exp[i] = [spent_by.get((code, k, fund), 0) for k in range(n_months)]
        mean = np.maximum(1, exp.mean(axis=1)).astype(np.int64)
        ratio = np.array([FUND_INCOME_RATIO[f] for f in funds])[:, None]
        income = (ratio * mean[:, None] * rng.uniform(0.97, 1.03, (n, n_months))).astype(np.int64)
        subsidy = (
            income
            * np.array([RESIDENT_SUBSIDY_SHARE if f == "390" else 0.0 for f in funds])[:, None]
        ).astype(np.int64)
        contrib = income - subsidy
        exp_other = exp * 5 // 1000
        balance = (np.array([FUND_RESERVE_MONTHS[f] for f in funds]) * mean).astype(np.int64)
        for k, month in enumerate(periods):  # months chain: one step per month, not per row
            interest = (balance * ANNUAL_INTEREST / 12).astype(np.int64)
            close = balance + contrib[:, k] + subsidy[:, k] + interest - exp[:, k] - exp_other[:, k]
            values = [balance, contrib[:, k], subsidy[:, k], interest, np.zeros(n, np.int64),
                      exp[:, k], exp_other[:, k], close]  # fmt: skip
            table = pa.table(
                {
                    "admdvs": [str(code)] * n,
                    "period": [f"{month:%Y-%m}"] * n,
                    "fund_type": funds,
                    **{
                        name: claims.cents_text(v)
                        for name, v in zip(LEDGER_FIELDS, values, strict=True)
                    },
                }
            )
            batches.write(
                batches.path("fund_ledger", month, code, f"ledger-{code}-{month:%Y%m}"), table
            )
            balance = close


def _cases(rng, batches: Batches, periods, institutions, insured, abused) -> None:
    """Cases at the institutions where abuse was planted (mostly), recoveries as they close."""
    last = len(periods) - 1
    mean_involved = RECOVERED_PER_CASE / RECOVERED_SHARE
    median = mean_involved / np.exp(CASE_SIGMA**2 / 2)
    expected: dict[int, float] = defaultdict(float)
    offset = {code: rng.random() for code in institutions}
    for (code, k), count in sorted(insured.items()):
        month = periods[k]
        # Cases arrive at the expected rate without Poisson noise: a region-month of a small
        # sample expects a fraction of a case, and the calibration must not hinge on luck.
        before = int(expected[code] + offset[code])
        expected[code] += count * RECOVERED_PER_INSURED_MONTH / RECOVERED_PER_CASE
        n = int(expected[code] + offset[code]) - before
        if n == 0:
            continue
        inst = institutions[code]
        hospitals = inst.serial[inst.hospitals()]
        suspects = np.concatenate(abused.get((code, k), [np.array([], np.int64)]))
        pool = np.where(
            (rng.random(n) < 0.7) & (len(suspects) > 0),
            suspects[rng.integers(0, max(1, len(suspects)), n)] if len(suspects) else 0,
            hospitals[rng.integers(0, len(hospitals), n)],
        )
        where = claims.institution_codes(code * 100_000 + pool, np.zeros(n, dtype=bool))
        sources = rng.choice(list(CASE_SOURCES), n, p=list(CASE_SOURCES.values()))
        involved = np.round(median * np.exp(CASE_SIGMA * rng.standard_normal(n)) * 100).astype(
            np.int64
        )
        recovered = np.round(involved * RECOVERED_SHARE).astype(np.int64)
        lag = rng.integers(0, 2, n)  # closed in the month opened or the next
        closed = k + lag <= last
        ids = np.array([f"C{code}{month:%Y%m}{i:04d}" for i in range(n)])  # a few a month
        open_date = np.datetime64(month, "D") + rng.integers(0, 28, n).astype("timedelta64[D]")
        close_day = (np.datetime64(month, "M") + lag).astype("datetime64[D]") + np.timedelta64(
            27, "D"
        )
        fines = np.where(rng.random(n) < 0.3, involved, 0)
        case = sources != "self_inspection"
        table = pa.table({
            "case_id": ids[case], "admdvs": np.full(case.sum(), str(code)),
            "fixmedins_code": where.filter(pa.array(case)),
            "case_source": sources[case],
            "violation_type": rng.choice(VIOLATIONS, n)[case],
            "open_date": np.datetime_as_string(open_date)[case],
            "close_date": pa.array(np.datetime_as_string(close_day)[case], mask=~closed[case]),
            "involved_amt": claims.cents_text(involved[case]),
            "fine_amt": claims.cents_text(fines[case]),
            "action": rng.choice(ACTIONS, n)[case],
            "status": np.where(closed, "closed", "open")[case],
        })  # fmt: skip
        if table.num_rows:
            batches.write(
                batches.path("supervision_case", month, code, f"cases-{code}-{month:%Y%m}"), table
            )
        for later in np.unique(lag[closed]):
            sel = closed & (lag == later)
            rec_month = periods[k + int(later)]
            rec = pa.table({
                "recovery_id": np.char.add("R", ids[sel]),
                "case_id": pa.array(ids[sel], mask=(sources[sel] == "self_inspection")),
                "admdvs": np.full(sel.sum(), str(code)),
                "fixmedins_code": where.filter(pa.array(sel)),
                "recovered_date": np.datetime_as_string(close_day[sel]),
                "recovered_amt": claims.cents_text(recovered[sel]),
            })  # fmt: skip
            batches.write(
                batches.path(
                    "fund_recovery",
                    rec_month,
                    code,
                    f"recovery-{code}-{month:%Y%m}-{rec_month:%Y%m}",
                ),
                rec,
            )


def _missing_column(batches: Batches, periods, codes, truth: defects.Truth) -> None:
    """One practitioner batch arrives without its required `dr_code` column."""
    rel = batches.path(
        "practitioner", periods[-1], codes[0], f"practitioner-{codes[0]}-{periods[-1]:%Y%m}"
    )
    path = batches.landing / rel
    table = pacsv.read_csv(
        path, convert_options=pacsv.ConvertOptions(column_types={"dr_code": pa.string()})
    )
    pacsv.write_csv(table.drop_columns(["dr_code"]), path, _CSV_OPTIONS)
    truth.add("practitioner", ["dr_code"], "missing_required_column", rel)


_VARIANTS = ("parquet", "gzip", "gb18030", "utf8_bom", "crlf")


def _deliveries(
    rng, landing: Path, rates, truth: defects.Truth, unparsable: set[str], frozen: set[str]
) -> dict[str, str]:
    """Re-encode some batches as provincial systems send them; returns renamed paths."""
    files = sorted(p.relative_to(landing).as_posix() for p in landing.rglob("*.csv"))
    probs = np.array([rates[v] for v in _VARIANTS])
    edges = np.cumsum(probs)
    draws = rng.random(len(files))
    chosen = [
        _VARIANTS[int(np.searchsorted(edges, u, side="right"))] if u < edges[-1] else None
        for u in draws
    ]  # one step per file, not per row

    def eligible(i: int, variant: str | None) -> bool:
        # Batches with broken rows stay text; re-sent batches stay as first delivered.
        rel = files[i]
        return not (rel in frozen or (rel in unparsable and variant == "parquet"))

    # Every variant with a rate shows at least once, however small the sample.
    for variant, p in zip(_VARIANTS, probs, strict=True):
        if p > 0 and not any(c == variant and eligible(i, c) for i, c in enumerate(chosen)):
            free = [i for i, c in enumerate(chosen) if c is None and eligible(i, variant)]
            if free:
                chosen[free[int(rng.integers(0, len(free)))]] = variant
    renamed = {}
    for i, (rel, variant) in enumerate(zip(files, chosen, strict=True)):
        if variant is None or not eligible(i, variant):
            continue
        path = landing / rel
        data = path.read_bytes()
        new_rel = rel
        if variant == "parquet":
            header = data.split(b"\n", 1)[0].decode("utf-8").split(",")
            options = pacsv.ConvertOptions(
                column_types={c.strip('"'): pa.string() for c in header}, strings_can_be_null=True
            )
            new_rel = rel[: -len(".csv")] + ".parquet"
            pq.write_table(pacsv.read_csv(path, convert_options=options), landing / new_rel)
            path.unlink()
        elif variant == "gzip":
            new_rel = rel + ".gz"
            (landing / new_rel).write_bytes(gzip.compress(data, mtime=0))
            path.unlink()
        elif variant == "gb18030":
            path.write_bytes(data.decode("utf-8").encode("gb18030"))
        elif variant == "utf8_bom":
            path.write_bytes(b"\xef\xbb\xbf" + data)
        else:
            path.write_bytes(data.replace(b"\n", b"\r\n"))
        renamed[rel] = new_rel
        truth.add(rel.split("/", 1)[0], [new_rel], variant, new_rel)
    return renamed
