"""`yibao bench`: what each phase costs, against a bare DuckDB scan and a pandas baseline.

Everything runs in a fresh work folder under ``<home>/bench`` on the same files:
generate (timed apart), the real Dagster pipeline (its steps timed from the run's
event log), a re-run with nothing new, the SQL the dashboard charts run, a bare
DuckDB scan of the landing files and the coverage mart computed with pandas.
The report says which targets are met and, where not, which phase costs most.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import duckdb

from yibao.config import Settings
from yibao.pipeline import run_pipeline
from yibao.simulate.generator import generate

# Targets of the benchmark issue, on 2 cores / 24 GB.
TARGETS = {
    "small_end_to_end_s": 60,
    "ratio_to_scan": 15,
    "ingest_ratio_to_scan": 2,
    "dashboard_query_p95_ms": 1000,
    "pandas_ratio_min": 10,
    "generate_settlements_per_s": 200_000,
    # Adding a month costs at most this multiple of the month's share of a full rebuild.
    "incremental_month_ratio": 1.5,
    # Great Expectations validation at most this share of a run (#7).
    "validate_share": 0.15,
}
DASHBOARD_REPEATS = 20


def _timed(fn, *args, **kwargs):
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - started


def _feed_csv_patterns(landing: Path) -> list[tuple[str, str]]:
    """(feed, glob of its landed CSV files) for every feed folder, in name order."""
    return [
        (feed, str(landing / feed / "**" / "*.csv"))
        for feed in sorted(p.name for p in landing.iterdir() if p.is_dir())
    ]


def _baseline_connection(
    settings: Settings, database: str = ":memory:"
) -> duckdb.DuckDBPyConnection:
    """The DuckDB both baselines time: the pipeline's own configuration (threads, memory
    limit), and no progress bar (drawn on a terminal, it would be timed with the work)."""
    con = duckdb.connect(database, config=settings.duckdb_config())
    con.execute("set enable_progress_bar = false")
    return con


def baseline_scan(settings: Settings) -> float:
    """One bare DuckDB read of every landed CSV: the floor the pipeline is compared to."""
    con = _baseline_connection(settings)
    started = time.perf_counter()
    for _feed, pattern in _feed_csv_patterns(settings.landing):
        con.execute(
            f"select count(*) from read_csv('{pattern}', all_varchar = true, "
            "hive_partitioning = false)"
        ).fetchall()
    return time.perf_counter() - started


def baseline_load(settings: Settings, scratch: Path) -> float:
    """A plain DuckDB load of every landed CSV into tables of a scratch file: types
    detected, nothing checked, hashed or numbered. What a load costs on this machine
    before anything Yibao adds to it (the issue's own figures: loading 5 million
    settlements 3.5 s, scanning them 1 s)."""
    path = scratch / "baseline-load.duckdb"
    path.unlink(missing_ok=True)
    con = _baseline_connection(settings, str(path))
    started = time.perf_counter()
    try:
        for feed, pattern in _feed_csv_patterns(settings.landing):
            con.execute(
                f"create table {feed} as select * from read_csv('{pattern}', "
                "hive_partitioning = false)"
            )
        con.execute("checkpoint")
        return time.perf_counter() - started
    finally:
        con.close()
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".wal").unlink(missing_ok=True)


def _levels_above(region):
    """Each region code's nation, province and prefecture, as pandas Series."""
    import pandas as pd

    return (
        ("national", pd.Series("100000", index=region.index)),
        ("province", region.str[:2] + "0000"),
        # AA90CC: a county-level unit under the province stands at prefecture rank.
        ("prefecture", region.where(region.str[2:4] == "90", region.str[:4] + "00")),
    )


def pandas_coverage(landing: Path):
    """The national, province and prefecture coverage counts as a small team might write them."""
    import pandas as pd

    files = sorted((landing / "psn_insu").rglob("*.csv"))
    df = pd.concat([pd.read_csv(f, dtype=str) for f in files], ignore_index=True)
    df["updt_time"] = pd.to_datetime(df["updt_time"])
    df["psn_insu_date"] = pd.to_datetime(df["psn_insu_date"])
    months = pd.period_range(df["updt_time"].min(), df["updt_time"].max(), freq="M")
    out = []
    for month in months:
        end = (month + 1).start_time
        seen = df[df["updt_time"] < end].sort_values("updt_time")
        latest = seen.groupby(["psn_no", "insutype", "insuplc_admdvs"]).tail(1)
        active = latest[(latest["psn_insu_stas"] == "1") & latest["insutype"].isin(["310", "390"])]
        primary = active.sort_values(
            ["psn_insu_date", "updt_time", "psn_no"], ascending=[False, False, True]
        ).drop_duplicates("certno")
        for level, key in _levels_above(primary["insuplc_admdvs"]):
            for admdvs, n in primary.groupby(key).size().items():
                out.append((month.start_time.date().isoformat(), admdvs, level, int(n)))
    return sorted(out)


LEDGER_AMOUNTS = ("bal_open", "inc_contrib", "inc_subsidy", "inc_interest", "inc_other",
                  "exp_benefit", "exp_other", "bal_close")  # fmt: skip


def pandas_fund_balance(landing: Path):
    """Each fund's month by region, province and nation (income, expenditure, closing
    balance, months of reserve on a trailing 12-month average), as a small team might
    write it; amounts in cents so sums are exact."""
    import pandas as pd

    root = landing / "fund_ledger"
    files = sorted(root.rglob("*.csv"), key=lambda p: str(p.relative_to(landing)))
    df = pd.concat([pd.read_csv(f, dtype=str) for f in files], ignore_index=True)
    # A region × month × fund delivered again: the last file, then its last line, wins.
    df = df.drop_duplicates(["admdvs", "period", "fund_type"], keep="last")
    for col in LEDGER_AMOUNTS:
        df[col] = (pd.to_numeric(df[col]) * 100).round().astype("int64")
    df["income"] = df["inc_contrib"] + df["inc_subsidy"] + df["inc_interest"] + df["inc_other"]
    df["expenditure"] = df["exp_benefit"] + df["exp_other"]
    region = df["admdvs"]
    levels = [region, *(key for _level, key in _levels_above(region))]
    # A code stands once at each level above it (a prefecture is its own prefecture).
    rolled = pd.concat([df.assign(level_admdvs=key) for key in levels]).drop_duplicates(
        ["admdvs", "period", "fund_type", "level_admdvs"]
    )
    sums = (
        rolled.groupby(["level_admdvs", "fund_type", "period"])[
            ["income", "expenditure", "bal_close"]
        ]
        .sum()
        .reset_index()
        .sort_values(["level_admdvs", "fund_type", "period"])
    )
    sums["avg_12m"] = sums.groupby(["level_admdvs", "fund_type"])["expenditure"].transform(
        lambda s: s.rolling(12, min_periods=1).mean()
    )
    sums["reserve"] = (sums["bal_close"] / sums["avg_12m"]).where(sums["avg_12m"] > 0).round(2)
    columns = ["period", "level_admdvs", "fund_type", "income", "expenditure", "bal_close"]
    return sorted(
        (p + "-01", a, t, int(i), int(e), int(b), None if pd.isna(r) else float(r))
        for p, a, t, i, e, b, r in sums[[*columns, "reserve"]].itertuples(index=False)
    )


def fund_rows_match(pandas_rows: list, mart_rows: list) -> bool:
    """Amounts equal to the cent; months of reserve within a rounding step (two roundings
    of a float quotient may land either side of a half-cent)."""
    if len(pandas_rows) != len(mart_rows):
        return False
    for got, want in zip(pandas_rows, mart_rows, strict=True):
        if got[:6] != want[:6] or (got[6] is None) != (want[6] is None):
            return False
        if got[6] is not None and abs(got[6] - want[6]) > 0.011:
            return False
    return True


def _pandas_child(landing: str, send) -> None:
    try:
        started = time.perf_counter()
        out = (pandas_coverage(Path(landing)), pandas_fund_balance(Path(landing)))
        seconds = time.perf_counter() - started
        # VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork and exec.
        status = Path("/proc/self/status").read_text().splitlines()
        peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
        send.send(("ok", (out, seconds, peak_kb / 1024)))
    except BaseException:
        import traceback

        send.send(("error", traceback.format_exc()))
    finally:
        send.close()


def pandas_baseline(landing: Path) -> tuple[list, float, float]:
    """The pandas baseline in a process of its own, timed inside it: its memory is the
    baseline's peak, not the pipeline's (object columns of every enrollment change).

    A plain process that sends its result and ends, never a Pool: Pool's exit stops its
    worker with SIGTERM, and a process that has run Dagster ignores SIGTERM when SIGINT
    was ignored (Dagster maps the one to the other; a shell's background job ignores
    SIGINT), which its child inherits: the bench then waited forever on a worker that
    could not stop."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_pandas_child, args=(str(landing), send), name="pandas-baseline")
    child.start()
    send.close()  # the child holds the only sending end: EOF if it dies without a word
    try:
        kind, payload = receive.recv()
    except EOFError:
        kind, payload = "error", "it ended without a result"
    finally:
        receive.close()
        child.join()
    if kind != "ok":
        raise RuntimeError(f"the pandas baseline failed (exit code {child.exitcode}): {payload}")
    return payload


def chart_queries(bundle: Path) -> dict[str, str]:
    """The SQL each chart of the dashboards bundle runs, rebuilt from its saved form data
    (dataset, metrics with their expressions, group-by columns, filters), as Superset
    compiles it: every chart of every dashboard, not a sample."""
    import yaml

    datasets = {}
    for path in (bundle / "datasets").rglob("*.yaml"):
        d = yaml.safe_load(path.read_text())
        metrics = {m["metric_name"]: m["expression"] for m in d.get("metrics") or []}
        datasets[d["uuid"]] = (f"{d['schema']}.{d['table_name']}", metrics)
    queries = {}
    for path in sorted((bundle / "charts").glob("*.yaml")):
        chart = yaml.safe_load(path.read_text())
        table, metric_sql = datasets[chart["dataset_uuid"]]
        params = chart["params"]
        names = params.get("metrics") or [params[k] for k in ("metric",) if k in params]
        groupby = params.get("groupby") or []
        if isinstance(groupby, str):  # a heatmap's y axis is one column, not a list
            groupby = [groupby]
        groups = [c for c in groupby if isinstance(c, str)]
        if params.get("entity"):
            groups.append(params["entity"])
        if params.get("x_axis"):
            groups.insert(0, params["x_axis"])
        where = []
        for f in params.get("adhoc_filters") or []:
            if f["expressionType"] == "SQL":
                where.append(f"({f['sqlExpression']})")
            else:
                values = f["comparator"] if isinstance(f["comparator"], list) else [f["comparator"]]
                literals = [f"'{v}'" if isinstance(v, str) else str(v).lower() for v in values]
                where.append(f"{f['subject']} in ({', '.join(literals)})")
        if params.get("query_mode") == "raw":  # a table of rows, no aggregation
            groups, names = [], []
            select = list(params.get("all_columns") or ["*"])
        else:
            select = [*groups, *(f"{metric_sql[m]} as {m}" for m in names)]
        sql = f"select {', '.join(select)} from {table}"
        if where:
            sql += " where " + " and ".join(where)
        if groups:
            sql += " group by " + ", ".join(groups)
        if params.get("query_mode") == "raw" and params.get("order_by_cols"):
            order = [json.loads(o) for o in params["order_by_cols"]]
            sql += " order by " + ", ".join(f"{c} {'asc' if up else 'desc'}" for c, up in order)
        queries[chart["slice_name"]] = sql + f" limit {params.get('row_limit', 10000)}"
    return queries


def dashboard_latency(live: Path, queries: dict[str, str]) -> dict[str, float]:
    con = duckdb.connect(str(live), read_only=True, config={"threads": 2})
    samples = []
    for sql in queries.values():
        for _ in range(DASHBOARD_REPEATS):
            started = time.perf_counter()
            con.execute(sql).fetchall()
            samples.append((time.perf_counter() - started) * 1000)
    con.close()
    samples.sort()
    return {
        "p50": statistics.median(samples),
        "p95": samples[int(0.95 * (len(samples) - 1))],
    }


def _machine() -> dict:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cores": os.cpu_count(),
        "ram_gb": round(mem / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{pkg: version(pkg) for pkg in ("duckdb", "dbt-core", "dbt-duckdb", "dagster", "pandas")},
    }


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)  # Linux reports KiB


def _phase_of(step: str) -> str:
    if step.startswith("ingest"):
        return "ingest"
    if "_ge_" in step:
        return "validate"
    if step.startswith("warehouse__published"):
        return "publish"
    return "transform"


# The models of the rule base (#6): timed apart from the rest of the transform.
RULE_MODELS = ("int_rule_", "rule_hits", "rule_catalog", "supervision_funnel_monthly")


def model_seconds(settings: Settings) -> dict[str, float]:
    """Seconds dbt spent on each model in the last build of this home."""
    results = json.loads((settings.home / "dbt" / "target" / "run_results.json").read_text())
    return {
        r["unique_id"].split(".")[-1]: r["execution_time"]
        for r in results["results"]
        if r["unique_id"].startswith("model.")
    }


def rule_base_seconds(settings: Settings) -> float:
    """Seconds dbt spent on the rule base's models in the last build of this home."""
    return sum(s for name, s in model_seconds(settings).items() if name.startswith(RULE_MODELS))


# The marts the pandas baseline computes, and the feeds it reads to compute them.
PANDAS_MARTS = ("coverage_monthly", "fund_balance_monthly")
PANDAS_FEEDS = ("psn_insu", "fund_ledger")


def same_marts_seconds(settings: Settings, ingest_seconds: dict[str, float]) -> dict:
    """What the pipeline spent on the marts the pandas baseline computes: ingesting the
    feeds pandas reads (and their share, by bytes, of hashing and encoding checks) and
    building every model those marts descend from (from dbt's manifest and run results).
    Their lineage also reads settlement region codes (`int_admdvs_rollup`); the seconds of
    that model count, the settlements' ingestion does not: the marts' figures need none."""
    target = settings.home / "dbt" / "target"
    parents = json.loads((target / "manifest.json").read_text())["parent_map"]
    todo = [f"model.yibao.{name}" for name in PANDAS_MARTS]
    lineage: set[str] = set()
    while todo:
        node = todo.pop()
        if node.startswith("model.") and node not in lineage:
            lineage.add(node)
            todo.extend(parents.get(node, []))
    seconds = model_seconds(settings)
    models = sorted(uid.split(".")[-1] for uid in lineage)
    landing = settings.landing
    feed_bytes = {
        feed.name: sum(f.stat().st_size for f in feed.rglob("*") if f.is_file())
        for feed in landing.iterdir()
        if feed.is_dir()
    }
    share = sum(feed_bytes.get(f, 0) for f in PANDAS_FEEDS) / max(1, sum(feed_bytes.values()))
    ingest = sum(ingest_seconds.get(f, 0.0) for f in PANDAS_FEEDS)
    ingest += share * ingest_seconds.get("files (hash, encoding)", 0.0)
    transform = sum(seconds.get(name, 0.0) for name in models)
    return {
        "ingest_s": round(ingest, 3),
        "models_s": round(transform, 3),
        "total_s": round(ingest + transform, 3),
        "models": models,
        "top_models": sorted(
            ((name, round(seconds.get(name, 0.0), 2)) for name in models), key=lambda t: -t[1]
        )[:3],
    }


def _transform_seconds(run) -> float:
    """Seconds a pipeline run spent in dbt (its transform phase)."""
    return sum(s for step, s in run.step_seconds.items() if _phase_of(step) == "transform")


def _step_detail(settings: Settings) -> dict:
    """What the last build of this home spent its dbt time on, and which settlements it
    rebuilt: why adding a month costs what it costs."""
    seconds = model_seconds(settings)
    top = sorted(seconds, key=seconds.get, reverse=True)[:5]
    con = duckdb.connect(str(settings.build_db), read_only=True)
    # The settlements this build wrote carry its build time; those of earlier months are
    # the ones late reversals reached (or batches delivered again).
    months, earlier, earlier_all = con.execute("""
        with rows as (
            select period, _built_at = max(_built_at) over () as rebuilt
            from intermediate.int_settlements_netted
        )
        select count(distinct period) filter (where rebuilt),
            count(*) filter (where rebuilt and period < (select max(period) from rows)),
            count(*) filter (where period < (select max(period) from rows))
        from rows""").fetchall()[0]  # fmt: skip
    con.close()
    return {
        "top_models": [(name, round(seconds[name], 2)) for name in top],
        "months_rebuilt": months,
        "earlier_settlements_rebuilt": earlier,
        "earlier_settlements": earlier_all,
    }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _pipeline(settings: Settings, what: str, full_refresh: bool = False):
    """One quiet pipeline run; `what` failed raises, naming the run's log."""
    run = run_pipeline(settings, announce=lambda _line: None, full_refresh=full_refresh)
    if not run.result.success:
        raise RuntimeError(f"{what} failed; see {run.log_path}")
    return run


def incremental_month(root: Path, landing: Path, scale: str) -> tuple[list[float], int, dict]:
    """Transform seconds of the run that adds the last month to a warehouse built from
    the others, on the same files (hard links: nothing is copied), twice: the second run
    starts again from a copy of the warehouse as the first found it (this machine's
    speed drifts by a fifth within minutes, and one run may land in a slow spell). The
    months, and what the first run spent its time on."""
    work = root / f"work-{scale}-incremental"
    shutil.rmtree(work, ignore_errors=True)
    settings = Settings(home=work)
    files = [p for p in landing.rglob("*") if p.is_file()]
    months = sorted({part for p in files for part in p.parts if part.startswith("period=")})

    def link(keep) -> None:
        for path in files:
            if keep(path):
                target = settings.landing / path.relative_to(landing)
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    os.link(path, target)

    link(lambda p: months[-1] not in p.parts)
    _pipeline(settings, "the incremental benchmark")
    # The warehouse before the month (ingestion and dbt keep all their state in it), with
    # its write-ahead log should one be left.
    wal = settings.build_db.with_name(settings.build_db.name + ".wal")
    saved = {path: work / f"before-month.{path.name}" for path in (settings.build_db, wal)}
    for path, copy in saved.items():
        if path.exists():
            shutil.copyfile(path, copy)
    link(lambda p: True)
    seconds = [_transform_seconds(_pipeline(settings, "the incremental benchmark"))]
    detail = _step_detail(settings)
    for path, copy in saved.items():
        path.unlink(missing_ok=True)
        if copy.exists():
            shutil.copyfile(copy, path)
    seconds.append(_transform_seconds(_pipeline(settings, "the incremental benchmark")))
    shutil.rmtree(work, ignore_errors=True)
    return seconds, len(months), detail


def bench(home: Path, scale: str) -> dict:
    root = home / "bench"
    work = root / f"work-{scale}"
    shutil.rmtree(work, ignore_errors=True)
    settings = Settings(home=work)

    # The pipeline reads plain CSV, so the bare scan reads the very same files; the
    # simulator's own speed is measured apart, writing Parquet.
    counts, generate_s = _timed(generate, work, scale, fmt="csv")
    parquet_dir = root / f"gen-parquet-{scale}"
    shutil.rmtree(parquet_dir, ignore_errors=True)
    parquet_counts, parquet_s = _timed(generate, parquet_dir, scale, fmt="parquet")
    shutil.rmtree(parquet_dir, ignore_errors=True)
    run = _pipeline(settings, "the pipeline during the benchmark")
    phases = {"ingest": 0.0, "transform": 0.0, "validate": 0.0, "publish": 0.0}
    for step, seconds in run.step_seconds.items():
        phases[_phase_of(step)] += seconds
    phases["orchestration"] = max(0.0, run.seconds - sum(phases.values()))
    rules_s = rule_base_seconds(settings)
    # Where ingestion spent its time (the re-run below writes this file again).
    ingest_seconds = json.loads((settings.logs / "ingest_seconds.json").read_text())
    same_marts = same_marts_seconds(settings, ingest_seconds)
    rerun = _pipeline(settings, "the re-run during the benchmark")

    rerun_transform = _transform_seconds(rerun)
    # The full transform again (a full refresh, nothing new to ingest): each side of the
    # month's ratio is the lesser of two runs, the month's measured between these two.
    refresh = _pipeline(settings, "the full refresh during the benchmark", full_refresh=True)
    full_transforms = [phases["transform"], _transform_seconds(refresh)]

    month_runs, n_months, step = incremental_month(root, settings.landing, scale)
    incremental_s = min(month_runs)
    full_transform = min(full_transforms)
    scan_s = baseline_scan(settings)
    load_s = baseline_load(settings, root)
    # The pipeline's peak, before the pandas baseline runs (in a child of its own).
    pipeline_peak_mb = _peak_rss_mb()
    (pandas_cov, pandas_fund), pandas_s, pandas_peak_mb = pandas_baseline(settings.landing)
    live = settings.live_db.resolve()
    con = duckdb.connect(str(live), read_only=True)
    coverage = sorted(
        (p.isoformat(), a, lvl, int(n))
        for p, a, lvl, n in con.execute(
            "select period, admdvs, admdvs_level, insured_persons from marts.coverage_monthly "
            "where insutype = 'all' and admdvs_level in ('national', 'province', 'prefecture')"
        ).fetchall()
    )
    fund = sorted(
        (p.isoformat(), *rest)
        for p, *rest in con.execute(
            "select period, admdvs, fund_type, cast(income * 100 as bigint), "
            "cast(expenditure * 100 as bigint), cast(bal_close * 100 as bigint), "
            "cast(months_of_reserve as double) from marts.fund_balance_monthly"
        ).fetchall()
    )
    con.close()
    from yibao.superset.bundle import DASHBOARDS_DIR

    charts = chart_queries(DASHBOARDS_DIR)
    latency = dashboard_latency(live, charts)
    from yibao.rules import measure

    scores = measure(settings)

    rows = sum(counts.values())
    end_to_end = run.seconds
    report = {
        "scale": scale,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "landing_rows": counts,
        "settlements": counts.get("setl", 0),
        "fee_lines": counts.get("fee_list", 0),
        "generate_s": round(generate_s, 3),
        "generate_parquet_s": round(parquet_s, 3),
        # The simulator's own speed (target: 200,000 settlements a second, fee lines included).
        "generate_settlements_per_s": round(parquet_counts.get("setl", 0) / parquet_s, 1),
        "phases": {k: round(v, 3) for k, v in phases.items()},
        "end_to_end_s": round(end_to_end, 3),
        "rerun_unchanged_s": round(rerun.seconds, 3),
        "rows_per_s": round(rows / end_to_end, 1),
        "validate_share": round(phases["validate"] / end_to_end, 3),
        # The pipeline's peak (this process and its children: dbt), without the baseline.
        "peak_rss_mb": pipeline_peak_mb,
        "pandas_peak_rss_mb": round(pandas_peak_mb, 1),
        "baseline_scan_s": round(scan_s, 4),
        "ratio_to_scan": round(end_to_end / scan_s, 1),
        # Ingestion alone against the same bare read (target: within 2×).
        "ingest_ratio_to_scan": round(phases["ingest"] / scan_s, 2),
        "ingest_seconds": ingest_seconds,
        # A plain typed load of the same files (no checks, pseudonyms or line numbers):
        # its ratio to the scan is the floor under ingest_ratio_to_scan.
        "baseline_load_s": round(load_s, 3),
        "load_ratio_to_scan": round(load_s / scan_s, 2),
        "ingest_ratio_to_load": round(phases["ingest"] / load_s, 2),
        # pandas computes the coverage counts and the fund balances from the same files.
        "pandas_s": round(pandas_s, 3),
        # What the pipeline spent on those two marts: the feeds' ingestion, their lineage.
        "pandas_same_marts": same_marts,
        "pandas_ratio": round(pandas_s / same_marts["total_s"], 3),
        # Against the whole pipeline (rule base and all 30 million fee lines included).
        "pandas_ratio_whole_pipeline": round(
            pandas_s / (phases["ingest"] + phases["transform"]), 3
        ),
        "pandas_matches_mart": pandas_cov == coverage and fund_rows_match(pandas_fund, fund),
        # The lesser of two runs adding the month, and of two full transforms (the
        # first run's and a full refresh's): both runs of each are listed.
        "incremental_month_s": round(incremental_s, 3),
        "incremental_month_runs_s": [round(x, 3) for x in month_runs],
        "full_transform_s": round(full_transform, 3),
        "full_transform_runs_s": [round(x, 3) for x in full_transforms],
        # The month's share of a full build's transform (target: the increment ≤ 1.5×).
        "months": n_months,
        # Three decimals: at two, 1.503 printed as 1.50 and passed a target of 1.5.
        "incremental_month_ratio": round(incremental_s / (full_transform / n_months), 3),
        # The same, net of what every build pays whatever it adds (dbt's start-up, the
        # data tests, models rebuilt in full): the transform of the re-run with nothing
        # new. With a fixed cost F and m a month, the gross ratio over n months is
        # n(F + m)/(F + nm): at most 1.5 only where F < m; the net one asks whether the
        # month rebuilt history.
        "rerun_unchanged_transform_s": round(rerun_transform, 3),
        # None where a full build costs no more than a re-run (`tiny`: all start-up).
        "incremental_month_ratio_net": round(
            max(incremental_s - rerun_transform, 0.0)
            / ((full_transform - rerun_transform) / n_months),
            2,
        )
        if full_transform > rerun_transform
        else None,
        # Where that run's dbt time went, and how many months of settlements it rebuilt.
        "incremental_top_models": step["top_models"],
        "incremental_months_rebuilt": step["months_rebuilt"],
        # Settlements of earlier months the added month rebuilt, and all of them.
        "incremental_earlier_settlements_rebuilt": step["earlier_settlements_rebuilt"],
        "incremental_earlier_settlements": step["earlier_settlements"],
        # The rule base alone (its models' dbt time within the transform), and per month.
        "rules_s": round(rules_s, 3),
        "rules_month_s": round(rules_s / n_months, 3),
        "rule_hits": sum(sc.hits for sc in scores),
        "rules_min_precision": round(min(sc.precision for sc in scores), 4),
        "rules_min_recall": round(min(sc.recall for sc in scores if sc.recall is not None), 4),
        "dashboard_charts": len(charts),
        "dashboard_query_p50_ms": round(latency["p50"], 2),
        "dashboard_query_p95_ms": round(latency["p95"], 2),
        "notes": [
            "incremental_month_s: transform of the run that adds the last month to a "
            "warehouse built from the others; settlement and rule-input models rebuild the "
            "settlements the new batches add, reverse or deliver again (monthly marts "
            "re-aggregate their months), enrollment month ends those "
            "from the earliest new change, the enrollment history and dim_enrollments the "
            "persons the new batches name, the rule hits those of the settlements, persons "
            "and register entries that changed; other dimensions and coverage in full",
            "pandas_ratio: the pandas baseline's seconds for the coverage counts and fund "
            "balances, against what the pipeline spent on the same two marts (ingesting "
            "psn_insu and fund_ledger, building every model they descend from); "
            "pandas_ratio_whole_pipeline sets it against all of ingest and transform",
        ],
    }
    report["targets"] = _judge(report)
    _write(root, report)
    return report


def _judge(report: dict) -> list[dict]:
    biggest = max(report["phases"].items(), key=lambda kv: kv[1])
    why = f"largest phase: {biggest[0]} {biggest[1]:.1f}s"
    checks = [
        (
            "dashboard p95 ≤ 1 s",
            report["dashboard_query_p95_ms"] <= TARGETS["dashboard_query_p95_ms"],
        ),
        ("ratio_to_scan ≤ 15", report["ratio_to_scan"] <= TARGETS["ratio_to_scan"]),
        (
            "validation ≤ 15% of a run",
            report["validate_share"] <= TARGETS["validate_share"],
            "each suite pays Great Expectations' context and SQL data source set-up",
        ),
        (
            "ingest ≤ 2× bare scan",
            report["ingest_ratio_to_scan"] <= TARGETS["ingest_ratio_to_scan"],
            "the scan only counts rows; ingestion also hashes every file and checks its "
            "encoding, types and checks every field, pseudonymises and writes compressed "
            "storage. A plain typed load of the same files alone takes "
            f"{report['load_ratio_to_scan']:.2f}× the scan; ingestion is "
            f"{report['ingest_ratio_to_load']:.2f}× that load. Its seconds: "
            + ", ".join(f"{k} {v:.1f}" for k, v in list(report["ingest_seconds"].items())[:4]),
        ),
        (
            "≥ 10× faster than pandas",
            report["pandas_ratio"] >= TARGETS["pandas_ratio_min"],
            "the same marts here: ingest {ingest_s:.1f} s (every field checked, "
            "pseudonymised), models {models_s:.1f} s, the largest {top}".format(
                **report["pandas_same_marts"],
                top=", ".join(f"{n} {t:.1f}" for n, t in report["pandas_same_marts"]["top_models"]),
            ),
        ),
        (
            "simulator ≥ 200,000 settlements/s",
            report["generate_settlements_per_s"] >= TARGETS["generate_settlements_per_s"],
            "2 cores: one thread draws and formats text, two copy and encode Parquet "
            "(the cores not fully busy: the drawing thread is off-CPU at times without "
            "waiting on the queue); per-region-month files and Arrow calls dominate at "
            "small scales",
        ),
    ]
    top = ", ".join(f"{name} {sec:.1f}s" for name, sec in report["incremental_top_models"][:3])
    # What a month adds to a full transform beyond what every run pays (the fixed cost F,
    # a re-run's transform): n(F + m)/(F + nm) ≤ 1.5 holds only where F ≤ m.
    fixed = report["rerun_unchanged_transform_s"]
    per_month = max(report["phases"]["transform"] - fixed, 0.0) / report["months"]
    beyond = max(report["incremental_month_s"] - fixed, 0.0)
    if fixed > per_month:
        tail = (
            "dbt's start-up and data tests are paid by every run: a re-run with nothing new "
            f"costs {fixed:.1f} s of transform against {per_month:.1f} s a month adds to a "
            "full one, and 1.5× needs the first below the second"
        )
    else:  # the fixed cost is small enough: the month's own rebuild is what costs
        tail = (
            f"a re-run with nothing new costs {fixed:.1f} s of transform, below the "
            f"{per_month:.1f} s a month adds to a full one, but the step spends {beyond:.1f} s "
            f"beyond that ({beyond / max(per_month, 1e-9):.1f}× a month's part): its models "
            "rebuild more than the month (rule hits by person, fee lines by delete+insert)"
        )
    checks.append((
        "adding a month ≤ 1.5× its share of a full rebuild",
        report["incremental_month_ratio"] <= TARGETS["incremental_month_ratio"],
        f"besides the new month, the run rebuilt "
        f"{report['incremental_earlier_settlements_rebuilt']:,} of "
        f"{report['incremental_earlier_settlements']:,} earlier settlements (those its late "
        f"reversals reach); its largest models: {top}; {tail}",
    ))  # fmt: skip
    if report["scale"] == "small":
        checks.append(
            ("small end to end ≤ 60 s", report["end_to_end_s"] <= TARGETS["small_end_to_end_s"])
        )
    return [
        {"target": c[0], "met": bool(c[1]), "why": "" if c[1] else (c[2] if len(c) > 2 else why)}
        for c in checks
    ]


def _write(root: Path, report: dict) -> None:
    root.mkdir(parents=True, exist_ok=True)
    history_path = root / "history.json"
    history = json.loads(history_path.read_text()) if history_path.exists() else []
    history = [h for h in history if h["scale"] != report["scale"]] + [
        {k: report[k] for k in ("scale", "measured_at", "end_to_end_s", "landing_rows")}
    ]
    history_path.write_text(json.dumps(history, indent=2))
    (root / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    (root / "report.md").write_text(render_markdown(report))
    (root / "time_vs_size.svg").write_text(render_svg(history))


def render_markdown(r: dict) -> str:
    m = r["machine"]
    same = r["pandas_same_marts"]
    lines = [
        f"# Yibao benchmark, scale `{r['scale']}` ({r['measured_at']})",
        "",
        f"Machine: {m['cores']} cores, {m['ram_gb']} GB RAM, Python {m['python']}, "
        f"DuckDB {m['duckdb']}, dbt-core {m['dbt-core']}, Dagster {m['dagster']}.",
        f"Landing rows: {', '.join(f'{k} {v:,}' for k, v in r['landing_rows'].items())}.",
        "",
        "| phase | seconds |",
        "|---|---:|",
        f"| generate CSV (apart) | {r['generate_s']:.2f} |",
        f"| generate Parquet (apart; {r['generate_settlements_per_s']:,.0f} settlements/s) "
        f"| {r['generate_parquet_s']:.2f} |",
        *[f"| {k} | {v:.2f} |" for k, v in r["phases"].items()],
        f"| **end to end** | **{r['end_to_end_s']:.2f}** |",
        f"| re-run, nothing new | {r['rerun_unchanged_s']:.2f} |",
        f"| transform of a month added later (lesser of "
        f"{' and '.join(f'{x:.2f}' for x in r['incremental_month_runs_s'])}) "
        f"| {r['incremental_month_s']:.2f} |",
        f"| full transform (lesser of "
        f"{' and '.join(f'{x:.2f}' for x in r['full_transform_runs_s'])}: the run's, a full "
        f"refresh's) | {r['full_transform_s']:.2f} |",
        f"| rule base (within transform; per month {r['rules_month_s']:.2f}) "
        f"| {r['rules_s']:.2f} |",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| rows per second | {r['rows_per_s']:,.0f} |",
        f"| validation share of the run | {r['validate_share']:.1%} |",
        f"| peak RSS (MB) | {r['peak_rss_mb']:,.0f} |",
        f"| bare DuckDB scan (s) | {r['baseline_scan_s']:.3f} |",
        f"| ratio to scan | {r['ratio_to_scan']:,.1f} |",
        f"| ingest ÷ scan | {r['ingest_ratio_to_scan']:,.2f} |",
        f"| plain DuckDB load of the same files, types detected (s) | {r['baseline_load_s']:.3f} |",
        f"| plain load ÷ scan; ingest ÷ plain load | {r['load_ratio_to_scan']:,.2f}; "
        f"{r['ingest_ratio_to_load']:,.2f} |",
        f"| pandas, coverage and fund balance (s) | {r['pandas_s']:.2f} |",
        f"| pandas peak RSS (MB, a process of its own) | {r['pandas_peak_rss_mb']:,.0f} |",
        f"| the same marts here (s): ingest {same['ingest_s']:.1f} + "
        f"{len(same['models'])} models {same['models_s']:.1f} | {same['total_s']:.2f} |",
        f"| pandas ÷ the same marts here | {r['pandas_ratio']:.2f} |",
        f"| pandas ÷ (ingest + transform) | {r['pandas_ratio_whole_pipeline']:.2f} |",
        f"| pandas figures equal the mart | {r['pandas_matches_mart']} |",
        f"| month added ÷ its share of a full transform | {r['incremental_month_ratio']:.3f} |",
        f"| the same, net of a re-run's transform ({r['rerun_unchanged_transform_s']:.1f} s) "
        f"| {_fmt(r['incremental_month_ratio_net'])} |",
        f"| rule hits; lowest precision / recall against the truth | {r['rule_hits']:,}; "
        f"{r['rules_min_precision']:.3f} / {r['rules_min_recall']:.3f} |",
        f"| dashboard query p50 / p95 (ms), {r['dashboard_charts']} charts "
        f"| {r['dashboard_query_p50_ms']:.1f} / "
        f"{r['dashboard_query_p95_ms']:.1f} |",
        "",
        "| target | met | why not |",
        "|---|---|---|",
        *[f"| {t['target']} | {'yes' if t['met'] else 'no'} | {t['why']} |" for t in r["targets"]],
        "",
        *[f"- {note}" for note in r["notes"]],
        "",
    ]
    return "\n".join(lines)


def render_svg(history: list[dict]) -> str:
    """End-to-end seconds against landing rows, one point per scale measured."""
    points = sorted(
        (sum(h["landing_rows"].values()), h["end_to_end_s"], h["scale"]) for h in history
    )
    width, height, pad = 480, 300, 50
    max_x = max(p[0] for p in points) or 1
    max_y = max(p[1] for p in points) or 1

    def xy(x: float, y: float) -> tuple[float, float]:
        return pad + x / max_x * (width - 2 * pad), height - pad - y / max_y * (height - 2 * pad)

    dots = []
    for rows, seconds, scale in points:
        x, y = xy(rows, seconds)
        dots.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4"/>')
        dots.append(f'<text x="{x + 6:.1f}" y="{y - 6:.1f}">{scale} {seconds:.1f}s</text>')
    path = " ".join(f"{xy(r, s)[0]:.1f},{xy(r, s)[1]:.1f}" for r, s, _ in points)
    bottom, right = height - pad, width - pad
    axes = (
        f'<line x1="{pad}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="black"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{bottom}" stroke="black"/>'
        f'<text x="{width / 2}" y="{height - 15}" text-anchor="middle">'
        f"landing rows (max {max_x:,})</text>"
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">'
        + axes
        + f'<text x="15" y="{height / 2}" transform="rotate(-90 15 {height / 2})" '
        f'text-anchor="middle">end-to-end seconds</text>'
        f'<polyline points="{path}" fill="none" stroke="steelblue"/>' + "".join(dots) + "</svg>\n"
    )
