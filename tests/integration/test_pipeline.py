"""The walking skeleton end to end: landing → Dagster → dbt → GE → published → `yibao sql`.

Real processes, real DuckDB files, a real persistent Dagster instance: tiny data.
"""

import json
import os
import shutil
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import duckdb
import pyarrow.csv as pacsv
import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from tests.conftest import VENV_BIN, YIBAO, run_yibao

pytestmark = pytest.mark.integration


def _sql(home: Path, query: str):
    return json.loads(run_yibao(home, "sql", "--format", "json", query).stdout)


def _expected_national_insured(landing: Path, period: str) -> tuple[int, int]:
    """Insured persons and duplicate enrollments at month end, straight from the landing CSVs."""
    latest: dict[tuple, tuple] = {}
    for path in sorted((landing / "psn_insu").rglob("*.csv")):
        for row in pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(),
            convert_options=pacsv.ConvertOptions(
                column_types={
                    c: "string"
                    for c in (
                        "psn_no",
                        "certno",
                        "insutype",
                        "psn_insu_stas",
                        "insuplc_admdvs",
                        "updt_time",
                    )
                }
            ),
        ).to_pylist():
            if row["updt_time"][:7] > period:
                continue
            key = (row["psn_no"], row["insutype"], row["insuplc_admdvs"])
            if key not in latest or row["updt_time"] >= latest[key][0]:
                latest[key] = (row["updt_time"], row)
    per_person = defaultdict(int)
    for _, row in latest.values():
        if row["insutype"] in ("310", "390") and row["psn_insu_stas"] == "1":
            per_person[row["certno"]] += 1
    return len(per_person), sum(n - 1 for n in per_person.values())


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    home = tmp_path_factory.mktemp("e2e")
    # Plain CSV, so that the independent count below can read every batch with pyarrow;
    # the delivery variants go through the same pipeline in the dashboard tests.
    run_yibao(home, "generate", "--scale", "tiny", "--months", "2024-01:2024-03", "--format", "csv")
    proc = run_yibao(home, "run")
    assert "published version" in proc.stdout
    return home


def test_run_publishes_coverage(published):
    count = _sql(published, "select count(*) as n from marts.coverage_monthly")[0]["n"]
    assert count > 0


def test_national_figures_equal_an_independent_count(published):
    insured, duplicates = _expected_national_insured(published / "landing", "2024-03")
    row = _sql(
        published,
        "select insured_persons, duplicate_enrollments from marts.coverage_monthly "
        "where period = date '2024-03-01' and admdvs = '100000' and insutype = 'all'",
    )[0]
    assert (row["insured_persons"], row["duplicate_enrollments"]) == (insured, duplicates)
    assert duplicates > 0  # the simulator planted some


def test_provinces_add_up_to_the_nation(published):
    rows = _sql(
        published,
        "select period, "
        "sum(insured_persons) filter (where admdvs_level = 'province') as provinces, "
        "max(insured_persons) filter (where admdvs_level = 'national') as nation "
        "from marts.coverage_monthly where insutype = 'all' group by period",
    )
    assert len(rows) == 3
    assert all(r["provinces"] == r["nation"] for r in rows)


def _planted_personal_data(landing: Path) -> tuple[set[str], set[str]]:
    """The certificate numbers and names in every landed CSV (UTF-8 or GB18030, as the
    simulator writes them; lines with the wrong number of fields skipped)."""
    import pyarrow as pa

    certnos, names = set(), set()
    for path in landing.rglob("*.csv"):
        table = None
        for encoding in ("utf8", "gb18030"):
            try:
                table = pacsv.read_csv(
                    path,
                    read_options=pacsv.ReadOptions(encoding=encoding),
                    parse_options=pacsv.ParseOptions(invalid_row_handler=lambda row: "skip"),
                    convert_options=pacsv.ConvertOptions(
                        column_types={"certno": pa.string(), "psn_name": pa.string()}
                    ),
                )
                break
            except pa.ArrowInvalid:
                continue
        for column, into in (("certno", certnos), ("psn_name", names)):
            if table is not None and column in table.column_names:
                into.update(str(v) for v in table.column(column).to_pylist() if v)
    return certnos, names


def test_no_personal_data_in_the_published_warehouse(published):
    certnos, names = _planted_personal_data(published / "landing")
    live = (published / "warehouse" / "live.duckdb").resolve()
    build = published / "build" / "warehouse.duckdb"
    import duckdb

    # Digests hold digits in a row by chance, not an ID number: pseudonyms (integers, but
    # text inside the rule hits' scope keys), file checksums and the rule state's
    # fingerprints.
    digests = ("person_key", "checksum", "_scope_key", "fingerprint")
    for db in (live, build):
        con = duckdb.connect(str(db), read_only=True)
        try:  # a failed check must not leave the lock behind for the next test's run
            text_columns = con.execute(
                "select table_schema, table_name, column_name from information_schema.columns "
                "where data_type in ('VARCHAR', 'JSON')"
            ).fetchall()
            for schema, table, column in text_columns:
                values = {
                    r[0]
                    for r in con.execute(
                        f'select distinct "{column}"::varchar from "{schema}"."{table}"'
                    ).fetchall()
                }
                assert not values & certnos, (
                    f"certificate number in {db.name}:{schema}.{table}.{column}"
                )
                assert not values & names, f"name in {db.name}:{schema}.{table}.{column}"
                if column.endswith("_hmac") or column in digests:
                    continue
                shaped = con.execute(
                    f'select count(*) from "{schema}"."{table}" '
                    f"where regexp_matches(\"{column}\"::varchar, '[0-9]{{17}}[0-9Xx]')"
                ).fetchall()[0][0]
                assert shaped == 0, f"ID-shaped text in {db.name}:{schema}.{table}.{column}"
        finally:
            con.close()


def test_no_personal_data_in_logs_run_history_or_quality_results(published):
    """Downstream of landing nothing holds a certificate number or a name: not the run
    logs, Dagster's run and event history, dbt's files, Great Expectations' results and
    Data Docs, nor the scratch folder. Every file's bytes are searched: ID-shaped digits
    and runs of Chinese characters, against the values planted in landing."""
    import re

    certnos, names = _planted_personal_data(published / "landing")
    assert len(certnos) > 1000 and len(names) > 100
    id_shaped = re.compile(rb"[0-9]{17}[0-9Xx]")
    chinese = re.compile("[\u4e00-\u9fff]+")
    searched = 0
    for folder in ("logs", "dagster", "dbt", "quality", "scratch"):
        for path in (published / folder).rglob("*"):
            if not path.is_file():
                continue
            data = path.read_bytes()
            searched += 1
            found = {m.decode() for m in id_shaped.findall(data)} & certnos
            assert not found, f"certificate number in {path}"
            runs = set(chinese.findall(data.decode("utf-8", errors="ignore")))
            assert not runs & names, f"name {sorted(runs & names)[:3]} in {path}"
    assert searched > 10


def test_every_batch_is_accounted_for(published):
    rows = _sql(
        published, "select path, rows_read, rows_loaded, rows_quarantined, outcome from ops.batches"
    )
    assert len(rows) == len(list((published / "landing").rglob("*.csv")))
    assert all(r["rows_read"] == r["rows_loaded"] + r["rows_quarantined"] for r in rows)


def test_run_is_recorded_in_the_persistent_dagster_instance(published):
    os.environ["DAGSTER_HOME"] = str(published / "dagster")
    try:
        with DagsterInstance.get() as instance:
            runs = instance.get_runs(RunsFilter(job_name="yibao_run"))
            assert runs and runs[0].status == DagsterRunStatus.SUCCESS
            from dagster import AssetKey

            assert instance.get_latest_materialization_event(
                AssetKey(["marts", "coverage_monthly"])
            )
            assert instance.get_latest_materialization_event(AssetKey(["warehouse", "published"]))
    finally:
        del os.environ["DAGSTER_HOME"]


def test_rerun_without_new_files_publishes_same_figures(published):
    before = _sql(published, "select sum(insured_persons) as s from marts.coverage_monthly")
    proc = run_yibao(published, "run")
    assert "0 batch(es) processed" in proc.stdout
    assert _sql(published, "select sum(insured_persons) as s from marts.coverage_monthly") == before


FIGURE_TABLES = ("coverage_monthly", "settlement_monthly", "fund_balance_monthly",
                 "cross_province_settlement_monthly", "rule_hits")  # fmt: skip


def test_failing_expectation_blocks_publication(published):
    """Population cut to a tenth: coverage above 1.05 fails the GE suite; live figures stay."""
    live_before = (published / "warehouse" / "live.duckdb").resolve()
    figures_before = _sql(published, "select * from marts.coverage_monthly order by all")
    all_before = {
        t: _sql(published, f"select * from marts.{t} order by all") for t in FIGURE_TABLES
    }
    pop = next((published / "landing" / "population").rglob("*.csv"))
    original = pop.read_bytes()
    table = pacsv.read_csv(pop)
    import pyarrow as pa
    import pyarrow.compute as pc

    cut = table.set_column(
        2, "resident_pop", pc.divide(table.column("resident_pop"), pa.scalar(10))
    )
    pacsv.write_csv(cut, pop)
    try:
        proc = run_yibao(published, "run", check=False)
        assert proc.returncode == 1
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert "live warehouse unchanged" in lines[0] and "coverage_rate" in lines[0]
        # Every live figure stays; the reason it did not move is published beside it.
        for table in FIGURE_TABLES:
            assert (
                _sql(published, f"select * from marts.{table} order by all") == (all_before[table])
            ), table
        failed = _sql(
            published,
            "select suite, column_name, blocking from marts.dq_results where not success "
            "and run_id = (select run_id from marts.dq_results order by checked_at desc limit 1)",
        )
        assert {"suite": "marts__coverage_monthly", "column_name": "coverage_rate",
                "blocking": True} in failed  # fmt: skip
        assert (published / "warehouse" / "live.duckdb").resolve() != live_before
        assert _sql(published, "select kind from ops.publication") == [{"kind": "results_only"}]
    finally:
        pop.write_bytes(original)
    run_yibao(published, "run")  # the corrected batch publishes again
    assert _sql(published, "select * from marts.coverage_monthly order by all") == figures_before


def test_sql_piped_into_a_reader_that_stops_early_ends_quietly(published):
    """`yibao sql ... | head`: no traceback when the reader closes the pipe."""
    env = {**os.environ, "YIBAO_HOME": str(published)}
    proc = subprocess.run(
        f'"{YIBAO}" sql --format csv "select path from ops.batches, range(50)" | head -n 1',
        shell=True, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.stdout == "path\n"
    assert proc.stderr == "", proc.stderr


def test_a_run_under_another_pseudonym_key_is_refused_in_one_line(published):
    """A scheduler started without the home's key (or with another) must not give every
    person a second pseudonym: the run fails before loading anything and says why."""
    live_before = (published / "warehouse" / "live.duckdb").resolve()
    build = published / "build" / "warehouse.duckdb"

    def held():  # the build database: what the next run would publish
        con = duckdb.connect(str(build), read_only=True)
        try:
            return con.execute(
                "select (select count(*) from raw.setl), (select count(*) from raw.psn_insu), "
                "(select list(checksum order by path) from ops.batches)"
            ).fetchone()
        finally:
            con.close()

    ledger_before = held()
    env = {**os.environ, "YIBAO_HOME": str(published), "YIBAO_PSEUDONYM_KEY": "not-the-key"}
    proc = subprocess.run([YIBAO, "run"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "live warehouse unchanged: ingest_landing:" in lines[0]
    assert "PseudonymKeyChanged" in lines[0] and "not-the-key" not in lines[0]
    assert (published / "warehouse" / "live.duckdb").resolve() == live_before
    assert held() == ledger_before


def test_while_a_run_is_in_progress_sql_answers_and_a_second_run_is_refused(published):
    # Without its build database the run must reload and rebuild everything: real work.
    # One run serves both claims: readers are never blocked, writers are one at a time.
    shutil.rmtree(published / "build")
    env = {**os.environ, "YIBAO_HOME": str(published)}
    runner = subprocess.Popen(
        [YIBAO, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    answered, during, refused = 0, 0, None
    try:
        lock = published / "run.lock"
        while runner.poll() is None:
            run_yibao(
                published, "sql", "--format", "csv", "select count(*) from marts.coverage_monthly"
            )
            answered += 1
            if runner.poll() is None:
                during += 1
            # The run holds the lock once its own PID is in the lock file.
            holds = lock.exists() and lock.read_text().strip() == str(runner.pid)
            if refused is None and holds:
                second = run_yibao(published, "run", check=False)
                if runner.poll() is None:
                    refused = second
            time.sleep(0.2)
    finally:
        out, err = runner.communicate(timeout=600)
    assert runner.returncode == 0, err
    assert during >= 3, f"only {during} queries overlapped the run"
    assert answered >= during
    assert refused is not None, "the run ended before a second one could start"
    assert refused.returncode == 1
    assert "another `yibao run` is in progress" in refused.stderr


def test_every_published_column_is_described_in_english_and_chinese(published):
    """The dbt docs describe every column a regulator can query, in both languages."""
    import re

    import duckdb

    from yibao.dbt import ensure_manifest

    manifest = json.loads(ensure_manifest().read_text())
    documented: dict[tuple[str, str], dict[str, str]] = {}
    for node in [*manifest["nodes"].values(), *manifest["sources"].values()]:
        if node["resource_type"] in ("model", "source"):
            name = node.get("alias") or node.get("identifier") or node["name"]
            documented[(node["schema"], name)] = {
                c: v.get("description", "") for c, v in node["columns"].items()
            }
    live = (published / "warehouse" / "live.duckdb").resolve()
    con = duckdb.connect(str(live), read_only=True)
    columns = con.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_schema in ('marts', 'ops') and column_name not like '\\_%' escape '\\'"
    ).fetchall()
    con.close()
    tables = {(s, t) for s, t, _ in columns}
    assert ("marts", "rule_hits") in tables and ("marts", "dim_enrollments") in tables
    missing = []
    for schema, table, column in columns:
        text = documented.get((schema, table), {}).get(column, "")
        if not (re.search(r"[\u4e00-\u9fff]", text) and re.search(r"[A-Za-z]{3}", text)):
            missing.append(f"{schema}.{table}.{column}")
    assert not missing, f"columns without an English and Chinese description: {missing}"


def test_dbt_unit_tests_pass_on_crafted_rows(published, tmp_path):
    """dbt's unit tests (reversal netting across months, cross-province classes, national
    de-duplication, months of reserve, reconciliation, code ranges) run here: a run
    builds and data-tests the models but leaves the unit tests to the test suite."""
    import re

    from yibao.dbt import DBT_PROJECT

    project = str(DBT_PROJECT.project_dir)
    env = {
        **os.environ,
        "YIBAO_BUILD_DB": str(published / "build" / "warehouse.duckdb"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    proc = subprocess.run(
        [str(VENV_BIN / "dbt"), "test", "--select", "test_type:unit",
         "--project-dir", project, "--profiles-dir", project,
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    passed = re.search(r"PASS=(\d+)", proc.stdout)
    assert passed and int(passed.group(1)) >= 6, proc.stdout[-3000:]


def test_scoped_data_tests_check_new_rows_until_a_build_passes(published, tmp_path):
    """The largest tables' key tests read the rows built since the last build that passed
    everything (macros/checked_builds.sql). A duplicate written after it fails the build,
    and a failed build does not move the mark: the next build fails again."""
    from yibao.dbt import DBT_PROJECT

    build_db = tmp_path / "warehouse.duckdb"
    shutil.copyfile(published / "build" / "warehouse.duckdb", build_db)
    con = duckdb.connect(str(build_db))
    marks = con.execute("select count(*), max(run_started_at) from audit.checked_builds").fetchone()
    assert marks[0] >= 1, "a run that passed every test records a checked build"
    # A settlement written twice by a build after the mark (as a faulty strategy would).
    con.execute(
        "insert into intermediate.int_settlements_netted "
        "select * replace (current_timestamp::timestamp as _built_at) "
        "from intermediate.int_settlements_netted limit 1"
    )
    con.close()

    project = str(DBT_PROJECT.project_dir)
    env = {**os.environ, "YIBAO_BUILD_DB": str(build_db), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    for attempt in range(2):
        target = tmp_path / f"target{attempt}"
        proc = subprocess.run(
            [str(VENV_BIN / "dbt"), "build", "--exclude-resource-type", "unit_test",
             "--project-dir", project, "--profiles-dir", project,
             "--target-path", str(target), "--log-path", str(target)],
            capture_output=True, text=True, env=env, timeout=900,
        )  # fmt: skip
        assert proc.returncode != 0, f"build {attempt} passed with a duplicate settlement"
        assert "unique_int_settlements_netted_setl_id" in proc.stdout, proc.stdout[-3000:]
        # The test read the rows built since the mark, not the whole table.
        compiled = next(target.rglob("unique_int_settlements_netted_setl_id.sql")).read_text()
        assert marks[1].strftime("%Y-%m-%d %H:%M:%S") in compiled
        con = duckdb.connect(str(build_db), read_only=True)
        after = con.execute("select count(*) from audit.checked_builds").fetchone()[0]
        con.close()
        assert after == marks[0], "a failed build moved the checked-build mark"


def test_a_changed_seed_rebuilds_every_rule_hit(published, tmp_path):
    """A seed the rules read changed between two builds (the length-of-stay limits, as
    an edited los_limits.csv loaded by `dbt seed` would be): the incremental build redoes
    every hit, and gives what a full refresh of the same inputs gives."""
    from yibao.dbt import DBT_PROJECT

    project = str(DBT_PROJECT.project_dir)
    hits = (
        "select * exclude (_built_at) from intermediate.int_rule_hits where not _is_tombstone "
        "order by all"
    )
    built, over_limit = {}, {}
    for mode in ("incremental", "full"):
        db = tmp_path / f"{mode}.duckdb"
        shutil.copyfile(published / "build" / "warehouse.duckdb", db)
        con = duckdb.connect(str(db))
        [(schema,)] = con.execute(
            "select schema_name from duckdb_tables() where table_name = 'los_limits'"
        ).fetchall()
        [(before, r012_before)] = con.execute(
            "select max(_built_at), count(*) filter (where rule_id = 'R012') "
            "from intermediate.int_rule_hits"
        ).fetchall()
        con.execute(f"update {schema}.los_limits set max_los_days = least(max_los_days, 3)")
        con.close()
        env = {**os.environ, "YIBAO_BUILD_DB": str(db), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        proc = subprocess.run(
            [str(VENV_BIN / "dbt"), "run", "--select", "los_limits+",
             *(["--full-refresh"] if mode == "full" else []),
             "--project-dir", project, "--profiles-dir", project,
             "--target-path", str(tmp_path / mode), "--log-path", str(tmp_path / mode)],
            capture_output=True, text=True, env=env, timeout=900,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-3000:]
        con = duckdb.connect(str(db), read_only=True)
        built[mode] = con.execute(hits).fetchall()
        [(oldest, over_limit[mode])] = con.execute(
            "select min(_built_at), count(*) filter (where rule_id = 'R012') "
            "from intermediate.int_rule_hits"
        ).fetchall()
        con.close()
        assert oldest > before, f"{mode}: hits built before the seed changed were kept"
    assert over_limit["incremental"] > r012_before, "the lower limits must flag more stays"
    assert built["incremental"] == built["full"]
