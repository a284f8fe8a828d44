"""The benchmark harness on tiny data: a complete report whose figures agree with each other.

No timing is asserted here: speed is judged in the report, not in tests.
"""

import json
from pathlib import Path

import pytest

from tests.conftest import run_yibao

pytestmark = pytest.mark.integration

REQUIRED = {
    "machine",
    "settlements",
    "fee_lines",
    "phases",
    "end_to_end_s",
    "rows_per_s",
    "peak_rss_mb",
    "baseline_scan_s",
    "ratio_to_scan",
    "pandas_ratio",
    "incremental_month_s",
    "dashboard_query_p95_ms",
    "pandas_peak_rss_mb",
}


def test_bench_writes_a_consistent_report(home):
    # Six pipeline runs, two generations and the baselines: more than the default guard.
    proc = run_yibao(home, "bench", "--scale", "tiny", timeout=1200)
    assert "Yibao benchmark" in proc.stdout
    report = json.loads((home / "bench" / "report.json").read_text())
    assert REQUIRED <= set(report)
    assert set(report["phases"]) == {"ingest", "transform", "validate", "publish", "orchestration"}
    assert all(v >= 0 for v in report["phases"].values())
    assert report["end_to_end_s"] == pytest.approx(sum(report["phases"].values()), abs=0.01)
    assert report["ratio_to_scan"] == pytest.approx(
        report["end_to_end_s"] / report["baseline_scan_s"], rel=0.01
    )
    # The plain load of the same files: timed, related to the scan and to ingestion, gone.
    assert report["baseline_load_s"] > 0
    assert report["ingest_ratio_to_load"] == pytest.approx(
        report["phases"]["ingest"] / report["baseline_load_s"], rel=0.02
    )
    assert not list((home / "bench").glob("baseline-load.duckdb*"))
    # The month added later was transformed twice and the full build twice (the run's, a
    # full refresh's); the ratio sets the lesser month against the lesser full build.
    runs, fulls = report["incremental_month_runs_s"], report["full_transform_runs_s"]
    assert len(runs) == 2 and all(x > 0 for x in runs)
    assert report["incremental_month_s"] == pytest.approx(min(runs), abs=0.01)
    assert len(fulls) == 2 and fulls[0] == pytest.approx(report["phases"]["transform"], abs=0.01)
    assert report["full_transform_s"] == pytest.approx(min(fulls), abs=0.01)
    months = 3  # the tier's default window
    assert report["months"] == months
    assert report["incremental_month_ratio"] == pytest.approx(
        report["incremental_month_s"] / (report["full_transform_s"] / months), rel=0.02
    )
    assert not list((home / "bench").glob("work-*-incremental"))
    # Net of a re-run's transform: none where a full build costs no more than a re-run.
    fixed, transform = report["rerun_unchanged_transform_s"], report["full_transform_s"]
    net = report["incremental_month_ratio_net"]
    assert fixed > 0
    if transform > fixed:
        added = max(report["incremental_month_s"] - fixed, 0)
        assert net == pytest.approx(added / ((transform - fixed) / months), rel=0.02, abs=0.02)
    else:
        assert net is None
    # Where the month added later spent its time is named: models, months rebuilt.
    assert 1 <= report["incremental_months_rebuilt"] <= months
    # By settlement: only some of the earlier months' settlements were rebuilt.
    assert (
        report["incremental_earlier_settlements_rebuilt"]
        < report["incremental_earlier_settlements"]
    )
    assert report["incremental_top_models"] and all(
        s >= 0 for _, s in report["incremental_top_models"]
    )
    # The pandas baseline computed the same figures as the marts: the comparison is fair.
    assert report["pandas_matches_mart"] is True
    # ... and is set against what the pipeline spent on those marts: a part of the run.
    same = report["pandas_same_marts"]
    assert {"coverage_monthly", "fund_balance_monthly", "int_enrollment_history"} <= set(
        same["models"]
    )
    assert not any(m.startswith(("int_rule_", "rule_hits")) for m in same["models"])
    assert 0 < same["ingest_s"] < report["phases"]["ingest"]
    assert 0 < same["models_s"] < report["phases"]["transform"]
    assert report["pandas_ratio"] == pytest.approx(report["pandas_s"] / same["total_s"], rel=0.01)
    assert report["pandas_ratio_whole_pipeline"] < report["pandas_ratio"]
    # Every chart of every dashboard in the bundle is timed, not a sample.
    charts = list((Path(__file__).resolve().parents[2] / "dashboards" / "charts").glob("*.yaml"))
    assert report["dashboard_charts"] == len(charts) > 20
    # The rule base is timed apart and scored against the truth of the same files.
    assert 0 < report["rules_s"] < report["phases"]["transform"]
    # Ingestion's own split: the landed files, then every feed, within the ingest phase.
    spent = report["ingest_seconds"]
    assert {"files (hash, encoding)", "setl", "fee_list", "psn_insu"} <= set(spent)
    assert 0 < sum(spent.values()) <= report["phases"]["ingest"]
    assert report["rule_hits"] > 0 and 0 <= report["rules_min_precision"] <= 1
    assert report["machine"]["cores"] >= 1 and report["peak_rss_mb"] > 0
    assert report["pandas_peak_rss_mb"] > 0  # measured in a process of its own
    assert {t["target"] for t in report["targets"]} >= {"dashboard p95 ≤ 1 s", "ratio_to_scan ≤ 15"}
    md = (home / "bench" / "report.md").read_text()
    assert "| **end to end** |" in md
    assert (home / "bench" / "time_vs_size.svg").read_text().startswith("<svg")
