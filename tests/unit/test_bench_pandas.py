"""The pandas baseline of the benchmark computes fund balances the way the mart does."""

from yibao.bench.run import LEDGER_AMOUNTS, fund_rows_match, pandas_fund_balance

HEADER = "admdvs,period,fund_type," + ",".join(LEDGER_AMOUNTS)


def _ledger(landing, rel, *rows):
    path = landing / "fund_ledger" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([HEADER, *rows]) + "\n")


def test_latest_delivery_wins_and_regions_roll_up(tmp_path):
    # bal_open, contrib, subsidy, interest, other, benefit, other spending, bal_close
    _ledger(tmp_path, "period=2024-01/admdvs=440300/a.csv",
            "440300,2024-01,310,100.00,10.00,0,0.01,0,5.00,0,105.01")  # fmt: skip
    # The same region-month-fund delivered again in a later file: this one counts.
    _ledger(tmp_path, "period=2024-01/admdvs=440300/b.csv",
            "440300,2024-01,310,100.00,20.00,0,0,0,4.00,1.00,115.00")  # fmt: skip
    _ledger(tmp_path, "period=2024-01/admdvs=440100/a.csv",
            "440100,2024-01,310,50.00,5.00,1.00,0,0,2.00,0,54.00")  # fmt: skip
    _ledger(tmp_path, "period=2024-02/admdvs=440300/a.csv",
            "440300,2024-02,310,115.00,20.00,0,0,0,15.00,0,120.00")  # fmt: skip
    rows = {(p, a): rest for p, a, _fund, *rest in pandas_fund_balance(tmp_path)}
    assert rows[("2024-01-01", "440300")] == [2000, 500, 11500, 23.0]
    assert rows[("2024-01-01", "440000")] == [2600, 700, 16900, 24.14]
    assert rows[("2024-01-01", "100000")] == rows[("2024-01-01", "440000")]
    # February's reserve divides by the mean of January's and February's spending.
    assert rows[("2024-02-01", "440300")] == [2000, 1500, 12000, 12.0]
    assert ("2024-02-01", "440100") not in rows


def test_fund_rows_match_allows_a_rounding_step_only():
    row = ("2024-01-01", "440300", "310", 2000, 500, 11500, 23.0)
    assert fund_rows_match([row], [row[:6] + (23.01,)])
    assert not fund_rows_match([row], [row[:6] + (23.05,)])
    assert not fund_rows_match([row], [row[:5] + (11501, 23.0)])
    assert not fund_rows_match([row], [row[:6] + (None,)])
    assert not fund_rows_match([row], [])


def test_baseline_process_ends_on_its_own_when_sigterm_is_ignored(tmp_path):
    """After a Dagster run in a process whose SIGINT is ignored, SIGTERM is ignored too
    (and inherited): the baseline's process must end without being signalled. The
    Pool it ran in before was stopped by SIGTERM and, now and then, waited forever."""
    import signal
    import threading

    from tests.conftest import run_yibao
    from yibao.bench.run import pandas_baseline, pandas_coverage

    run_yibao(tmp_path, "generate", "--scale", "tiny", "--provinces", "44",
              "--months", "2024-01:2024-02")  # fmt: skip
    landing = tmp_path / "landing"
    expected = (pandas_coverage(landing), pandas_fund_balance(landing))
    assert expected[0] and expected[1]
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    results = []
    try:
        for _ in range(3):
            worker = threading.Thread(
                target=lambda: results.append(pandas_baseline(landing)), daemon=True
            )
            worker.start()
            worker.join(timeout=120)
            assert not worker.is_alive(), "the pandas baseline did not come back"
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert len(results) == 3
    for figures, seconds, peak_mb in results:
        assert figures == expected and seconds > 0 and peak_mb > 0
