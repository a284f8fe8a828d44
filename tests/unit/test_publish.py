import duckdb
import pytest

from yibao.config import Settings
from yibao.publish import (
    KEEP_VERSIONS,
    NothingPublished,
    connect_live,
    live_version_path,
    publish,
    publish_results,
    rollback,
)


def _build(settings: Settings, value: int) -> None:
    settings.build_db.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.build_db))
    con.execute("create schema if not exists marts; create schema if not exists raw")
    con.execute(f"create or replace table marts.figure as select {value} as v")
    con.execute("create or replace table raw.secret as select 'internal' as s")
    con.close()


def test_nothing_published_is_a_clear_error(home):
    with pytest.raises(NothingPublished, match="run `yibao run` first"):
        live_version_path(Settings(home=home))


def test_publish_swaps_live_and_keeps_old_readers_working(home):
    settings = Settings(home=home)
    _build(settings, 1)
    first = publish(settings)
    reader = connect_live(settings)
    _build(settings, 2)
    second = publish(settings)
    assert second.path != first.path
    # The reader opened before the swap still sees its version; a new one sees the new.
    assert reader.execute("select v from marts.figure").fetchone() == (1,)
    assert connect_live(settings).execute("select v from marts.figure").fetchone() == (2,)
    assert settings.live_db.resolve() == second.path


def test_only_published_schemas_are_copied(home):
    settings = Settings(home=home)
    _build(settings, 1)
    publish(settings)
    con = connect_live(settings)
    schemas = {r[0] for r in con.execute("select schema_name from duckdb_schemas()").fetchall()}
    assert "marts" in schemas and "raw" not in schemas


def test_old_versions_are_pruned(home):
    settings = Settings(home=home)
    for i in range(KEEP_VERSIONS + 2):
        _build(settings, i)
        publish(settings)
    versions = sorted(settings.versions_dir.glob("*.duckdb"))
    assert len(versions) == KEEP_VERSIONS
    assert settings.live_db.resolve() == versions[-1]


def _dq(settings: Settings, run: str) -> None:
    con = duckdb.connect(str(settings.build_db))
    con.execute("create table if not exists marts.dq_results (run_id varchar, success boolean)")
    con.execute("insert into marts.dq_results values ($r, false)", {"r": run})
    con.close()


def _live_figure(settings: Settings) -> int:
    return connect_live(settings).execute("select v from marts.figure").fetchone()[0]


def test_a_blocked_run_publishes_its_results_but_no_figure(home):
    settings = Settings(home=home)
    _build(settings, 1)
    publish(settings)
    _build(settings, 2)  # a run built new figures, then a blocking check failed
    _dq(settings, "blocked-run")
    copy = publish_results(settings)
    assert copy is not None and settings.live_db.resolve() == copy.path
    assert _live_figure(settings) == 1
    runs = connect_live(settings).execute("select run_id from marts.dq_results").fetchall()
    assert runs == [("blocked-run",)]


def test_rollback_returns_to_the_previous_figures_past_result_copies(home):
    settings = Settings(home=home)
    _build(settings, 1)
    publish(settings)
    _build(settings, 2)
    publish(settings)
    _dq(settings, "blocked")
    publish_results(settings)  # a copy of figures 2
    back = rollback(settings)
    assert _live_figure(settings) == 1 and settings.live_db.resolve() == back.path
    with pytest.raises(NothingPublished, match="no earlier"):
        rollback(settings)


def test_result_copies_do_not_push_out_the_versions_rollback_needs(home):
    settings = Settings(home=home)
    for i in range(KEEP_VERSIONS):
        _build(settings, i)
        publish(settings)
    for _ in range(KEEP_VERSIONS + 1):
        publish_results(settings)
    for _ in range(KEEP_VERSIONS - 1):
        rollback(settings)
    assert _live_figure(settings) == 0
