"""Superset in the loop: `yibao serve` on a real published warehouse, seen in real Chromium."""

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest
import requests
import yaml
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.chrome import available, chrome, login
from tests.conftest import YIBAO, run_yibao
from yibao.superset.api import SupersetClient

pytestmark = [
    pytest.mark.integration,
    # In CI the browser is installed by .ci/run: there a missing browser fails, never skips.
    pytest.mark.skipif(
        not available() and not os.environ.get("CI"),
        reason="Debian chromium and chromium-driver not installed (make browser-deps)",
    ),
]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "screenshots" / "coverage-dashboard.png"
# Every dashboard of the bundle (dashboards/): its title, and the charts its layout holds.
BUNDLE = REPO / "dashboards"
DASHBOARDS = {
    d["slug"]: (d["dashboard_title"], {
        v["meta"]["sliceName"] for v in d["position"].values()
        if isinstance(v, dict) and v.get("type") == "CHART"
    })
    for d in (yaml.safe_load(p.read_text()) for p in (BUNDLE / "dashboards").glob("*.yaml"))
}  # fmt: skip
CHART_NAMES = {
    yaml.safe_load(p.read_text())["slice_name"] for p in (BUNDLE / "charts").glob("*.yaml")
}
THEMES = {"overview", "coverage", "fund", "cross-province", "supervision", "data-quality"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("serve")
    run_yibao(home, "generate", "--scale", "tiny", "--months", "2024-01:2024-03")
    run_yibao(home, "run")
    env = {
        **os.environ,
        "YIBAO_HOME": str(home),
        "YIBAO_DAGSTER_PORT": str(_free_port()),
        "YIBAO_SUPERSET_PORT": str(_free_port()),
        "YIBAO_DOCS_PORT": str(_free_port()),
        # The tests run `yibao run` themselves: no sensor-launched run may race them.
        "YIBAO_AUTOMATION": "off",
    }
    env.pop("SUPERSET_ADMIN_PASSWORD", None)
    log = (home / "serve.out").open("w")
    proc = subprocess.Popen(
        [YIBAO, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        text = (home / "serve.out").read_text()
        if "Dagster UI:" in text or proc.poll() is not None:
            break
        time.sleep(0.5)
    text = (home / "serve.out").read_text()
    assert "Dagster UI:" in text, text
    state = json.loads((home / "run" / "serve.json").read_text())
    password = (home / "superset" / "admin_password").read_text().strip()
    yield {"home": home, "proc": proc, "state": state, "password": password, "env": env}
    # Stopped by its PID with SIGTERM: it stops its servers, and leaves no PID files behind.
    pids = [int(p.read_text()) for p in (home / "run").glob("*.pid")]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    log.close()
    assert "stopped Dagster, Superset and the dbt docs" in (home / "serve.out").read_text()
    assert not list((home / "run").glob("*.pid")) and not (home / "run" / "serve.json").exists()
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )


def _client(served) -> SupersetClient:
    return SupersetClient(served["state"]["superset_url"], "admin", served["password"])


def test_secrets_are_private_and_generated(served):
    superset = served["home"] / "superset"
    for name in ("admin_password", "secret_key"):
        mode = stat.S_IMODE((superset / name).stat().st_mode)
        assert mode == 0o600, name
    assert len(served["password"]) >= 16
    config = (superset / "superset_config.py").read_text()
    assert "SCARF_ANALYTICS = False" in config and "img-src" in config


def test_dbt_docs_describe_the_published_columns_in_english_and_chinese(served):
    url = served["state"]["docs_url"]
    page = requests.get(url, timeout=30)
    assert page.status_code == 200
    # The static page carries the manifest: every published relation and its columns.
    for text in ("fund_balance_monthly", "months_of_reserve", "累计结存可支付月数",
                 "cross_province_settlement_monthly", "跨省直接结算"):  # fmt: skip
        # The manifest is embedded as JSON: Chinese may come \u-escaped.
        assert text in page.text or json.dumps(text)[1:-1] in page.text, text
    assert (served["home"] / "dbt" / "docs" / "static_index.html").exists()


def test_data_docs_show_every_suite_of_the_last_run(served):
    """Great Expectations' Data Docs, rebuilt by the run's checks, served beside dbt's."""
    page = requests.get(served["state"]["quality_url"], timeout=30)
    assert page.status_code == 200
    for relation in ("marts.coverage_monthly", "marts.fund_balance_monthly", "raw.setl"):
        assert relation in page.text, relation


def test_the_bundle_has_a_dashboard_per_theme():
    assert set(DASHBOARDS) == THEMES
    assert set().union(*(charts for _, charts in DASHBOARDS.values())) == CHART_NAMES


@pytest.mark.parametrize("slug", sorted(THEMES))
def test_dashboard_renders_every_chart_in_chromium(served, slug):
    title, charts = DASHBOARDS[slug]
    base = served["state"]["superset_url"]
    with chrome() as driver:
        login(driver, base, "admin", served["password"])
        driver.get(f"{base}/superset/dashboard/{slug}/")

        def charts_state(d):
            # Superset may mount a chart more than once (layout and its hidden twin):
            # a chart counts as drawn when any of its mounts drew, as failed if any failed.
            return d.execute_script(
                """
                const charts = {};
                for (const h of document.querySelectorAll('[data-test-chart-id]')) {
                  const id = h.getAttribute('data-test-chart-id');
                  const c = charts[id] || (charts[id] = {drawn: false, error: 0, text: ''});
                  c.drawn = c.drawn || h.querySelectorAll('canvas, svg, table').length > 0;
                  const errors = '.ant-alert-error, [data-test="error-alert"]';
                  c.error += h.querySelectorAll(errors).length;
                  if (h.innerText.length > c.text.length) c.text = h.innerText.slice(0, 200);
                }
                return Object.values(charts);
                """
            )

        WebDriverWait(driver, 120).until(
            lambda d: (
                len(charts_state(d)) == len(charts) and all(c["drawn"] for c in charts_state(d))
            )
        )
        time.sleep(5)  # let the chart animations finish before the screenshot
        states = charts_state(driver)
        assert all(c["error"] == 0 for c in states), states
        assert title in driver.title
        # The whole dashboard in one picture: the window grows to the page's height.
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1600, min(max(height, 1100), 4000))
        time.sleep(2)
        shot = served["home"] / "screenshots" / f"{slug}-dashboard.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 20_000
        if slug == "coverage":
            assert any("%" in c["text"] for c in states)  # the big number shows a rate
            if os.environ.get("YIBAO_UPDATE_SCREENSHOT"):
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(shot, SCREENSHOT)
        # The Content-Security-Policy stops the front end's tracking pixel.
        blocked = [e for e in driver.get_log("browser") if "scarf" in e["message"]]
        assert all("violates" in e["message"] for e in blocked)


def test_every_chart_data_endpoint_returns_rows(served):
    client = _client(served)
    charts = client.list_ids("chart")
    assert {c["slice_name"] for c in charts} == CHART_NAMES
    for chart in charts:
        result = client.json("GET", f"/api/v1/chart/{chart['id']}/data/")["result"][0]
        assert result["error"] is None
        assert result["rowcount"] > 0, chart["slice_name"]


def _sql_lab(client: SupersetClient, sql: str):
    database = client.list_ids("database")[0]
    body = {"database_id": database["id"], "sql": sql, "runAsync": False, "schema": "marts"}
    return client.request("POST", "/api/v1/sqllab/execute/", json=body)


def test_sql_lab_refuses_dml(served):
    client = _client(served)
    refused = _sql_lab(client, "delete from marts.coverage_monthly")
    assert refused.status_code >= 400
    assert "DML" in refused.text
    ok = _sql_lab(client, "select count(*) as n from marts.coverage_monthly")
    assert ok.status_code == 200 and ok.json()["data"][0]["n"] > 0
    # The rows are still there: the refusal was real, not a silent no-op.
    again = _sql_lab(client, "select count(*) as n from marts.coverage_monthly")
    assert again.json()["data"] == ok.json()["data"]


def _national_coverage(client) -> float:
    chart = next(c for c in client.list_ids("chart") if c["slice_name"].startswith("National"))
    data = client.json("GET", f"/api/v1/chart/{chart['id']}/data/")["result"][0]["data"]
    return sorted(data, key=lambda r: r["period"])[-1]["coverage_rate"]


def test_new_publication_shows_without_restart(served):
    client = _client(served)
    home = served["home"]
    before = _national_coverage(client)
    pop = next((home / "landing" / "population").rglob("*.csv"))
    table = pacsv.read_csv(pop)
    # A corrected population batch (10% more residents) re-sent under the same path.
    grown = pc.cast(pc.round(pc.multiply(table.column("resident_pop"), 1.1)), pa.int64())
    pacsv.write_csv(table.set_column(2, "resident_pop", grown), pop)
    run_yibao(home, "run")
    after = _national_coverage(client)
    assert after < before * 0.95
    expected = json.loads(
        run_yibao(
            home,
            "sql",
            "--format",
            "json",
            "select sum(insured_persons) * 1.0 / sum(resident_pop) as r "
            "from marts.coverage_monthly "
            "where admdvs_level = 'national' and insutype = 'all' "
            "and period = (select max(period) from marts.coverage_monthly)",
        ).stdout
    )[0]["r"]
    assert after == pytest.approx(expected)  # the dashboard equals a query on the mart


def test_reimport_creates_no_duplicates(served):
    from yibao.config import Settings
    from yibao.superset.bundle import import_bundle

    client = _client(served)
    import_bundle(client, Settings(home=served["home"]))
    import_bundle(client, Settings(home=served["home"]))
    assert len(client.list_ids("chart")) == len(CHART_NAMES)
    assert len(client.list_ids("dashboard")) == len(DASHBOARDS)
    datasets = list((REPO / "dashboards" / "datasets").rglob("*.yaml"))
    assert len(client.list_ids("dataset")) == len(datasets)
    assert len(client.list_ids("database")) == 1


def test_export_writes_reviewable_files(served, tmp_path):
    target = tmp_path / "dashboards"
    target.mkdir()
    env = {**served["env"], "YIBAO_DASHBOARDS_DIR": str(target)}
    proc = subprocess.run(
        [YIBAO, "dashboards", "export"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    exported = {p.relative_to(target).as_posix() for p in target.rglob("*.yaml")}
    committed = {
        p.relative_to(REPO / "dashboards").as_posix() for p in (REPO / "dashboards").rglob("*.yaml")
    }
    assert exported == committed
    database = next(target.glob("databases/*.yaml")).read_text()
    assert "{{ YIBAO_LIVE_WAREHOUSE }}" in database
    assert str(served["home"]) not in "".join(p.read_text() for p in target.rglob("*.yaml"))
    assert "参保率" in (target / "charts" / "Coverage_rate_by_province_and_month.yaml").read_text()


def test_second_serve_reports_the_running_one(served):
    proc = run_yibao(served["home"], "serve", timeout=60)
    assert "already serving" in proc.stdout
    assert served["state"]["superset_url"] in proc.stdout


def test_dagster_ui_shows_the_pipeline(served):
    import requests

    base = served["state"]["dagster_url"]
    assert requests.get(f"{base}/server_info", timeout=10).status_code == 200
    query = "{ repositoriesOrError { ... on RepositoryConnection { nodes { jobs { name } } } } }"
    answer = requests.post(f"{base}/graphql", json={"query": query}, timeout=30).json()
    jobs = {j["name"] for n in answer["data"]["repositoriesOrError"]["nodes"] for j in n["jobs"]}
    assert "yibao_run" in jobs


def _dataset_rows(client: SupersetClient, admin: SupersetClient, table: str, columns, metric):
    dataset = next(d for d in admin.list_ids("dataset") if d["table_name"] == table)
    body = {
        "datasource": {"id": dataset["id"], "type": "table"},
        "queries": [{"columns": columns, "metrics": [metric], "row_limit": 10000}],
        "result_format": "json",
        "result_type": "full",
    }
    return client.json("POST", "/api/v1/chart/data", json=body)["result"][0]["data"]


def test_a_provincial_user_sees_only_its_province(served):
    password = "Shandong-bureau-2024"
    proc = run_yibao(
        served["home"], "users", "add", "--username", "shandong", "--password", password,
        "--role", "provincial", "--province", "37",
    )  # fmt: skip
    assert "provincial_37" in proc.stdout
    admin = _client(served)
    mine = SupersetClient(served["state"]["superset_url"], "shandong", password)
    everyone = _dataset_rows(admin, admin, "coverage_monthly", ["admdvs"], "insured_persons")
    seen = _dataset_rows(mine, admin, "coverage_monthly", ["admdvs"], "insured_persons")
    assert {r["admdvs"][:2] for r in everyone} > {"37"}
    assert seen and {r["admdvs"][:2] for r in seen} == {"37"}
    flows = _dataset_rows(
        mine, admin, "cross_province_settlement_monthly",
        ["insured_province", "treatment_province"], "settlements",
    )  # fmt: skip
    assert flows
    assert all("370000" in (r["insured_province"], r["treatment_province"]) for r in flows)
    hits = _dataset_rows(mine, admin, "rule_hits", ["admdvs"], "hits")
    assert all(r["admdvs"].startswith("37") for r in hits)
    by_province = _dataset_rows(mine, admin, "rule_hits_monthly", ["province"], "hits")
    assert {r["province"] for r in by_province} <= {"370000"}
    # A wrong role or province is refused in one line.
    bad = run_yibao(
        served["home"], "users", "add", "--username", "x1", "--password", password,
        "--role", "provincial", check=False,
    )  # fmt: skip
    assert bad.returncode == 1 and bad.stderr.startswith("yibao: users add: --role provincial")


def test_an_analyst_queries_in_sql_lab_but_cannot_write(served):
    password = "Analyst-password-2024"
    run_yibao(
        served["home"], "users", "add", "--username", "analyst1", "--password", password,
        "--role", "analyst",
    )  # fmt: skip
    analyst = SupersetClient(served["state"]["superset_url"], "analyst1", password)
    ok = _sql_lab(analyst, "select count(*) as n from marts.rule_hits")
    assert ok.status_code == 200 and ok.json()["data"][0]["n"] > 0
    refused = _sql_lab(analyst, "delete from marts.rule_hits")
    assert refused.status_code >= 400


def test_dashboards_carry_their_period_and_region_filters(served):
    client = _client(served)
    for slug in THEMES - {"data-quality"}:
        dashboard = client.json("GET", f"/api/v1/dashboard/{slug}")["result"]
        filters = json.loads(dashboard["json_metadata"])["native_filter_configuration"]
        names = {f["name"] for f in filters}
        assert "月份 Period" in names, slug
        region_filters = {
            "coverage": ["地区 Region"],
            "fund": ["地区 Region"],
            "cross-province": ["参保省份 Insured province", "就医省份 Treatment province"],
            "supervision": ["省份 Province"],
        }
        charts = client.json("GET", f"/api/v1/dashboard/{slug}/charts")["result"]
        for name in region_filters.get(slug, []):
            region = next(f for f in filters if f["name"] == name)
            # The import resolved the dataset the filter reads its values from.
            assert region["targets"][0]["datasetId"] > 0
            # Charts left out of a filter's scope are charts of this dashboard.
            assert set(region["scope"]["excluded"]) <= {c["id"] for c in charts}
        if slug == "supervision":
            # The national funnel is left out of the province filter; the hits by rule,
            # by province and by institution are not.
            excluded = {c["slice_name"] for c in charts if c["id"] in region["scope"]["excluded"]}
            in_scope = {
                "Hits by rule 规则命中（按规则）",
                "Hits by rule and province 规则命中（按规则与省份）",
                "Top institutions by suspect amount 疑点金额最高的机构",
            }
            assert excluded and not excluded & in_scope
