import hashlib
import hmac
import os
import stat

import duckdb
import pytest

from yibao.ingest.pseudonym import (
    hmac_sql,
    key_id,
    load_key,
    pseudonym_from_hex_sql,
    pseudonym_sql,
)


@pytest.mark.parametrize("key", [b"k", b"a-32-byte-key-for-the-warehouse!", b"x" * 100])
def test_sql_hmac_equals_python_hmac(key):
    values = ["370102199001011234", "44030019851231002X", "身份证"]
    con = duckdb.connect()
    got = con.execute(
        f"select {hmac_sql('v', key)} from unnest($vals) as t(v)", {"vals": values}
    ).fetchall()
    want = [hmac.new(key, v.encode(), hashlib.sha256).hexdigest() for v in values]
    assert [g[0] for g in got] == want


def test_pseudonym_is_the_hmac_truncated_to_124_bits():
    key = b"a-32-byte-key-for-the-warehouse!"
    values = ["370102199001011234", "44030019851231002X", None]
    con = duckdb.connect()
    got = con.execute(
        f"select {pseudonym_sql('v', key)}, {pseudonym_from_hex_sql(hmac_sql('v', key))} "
        "from unnest($vals) as t(v) order by v nulls last",
        {"vals": values},
    ).fetchall()
    want = [
        int(hmac.new(key, v.encode(), hashlib.sha256).hexdigest(), 16) >> 132 for v in values[:2]
    ]
    assert got == [(want[0], want[0]), (want[1], want[1]), (None, None)]
    assert all(0 < w < 2**124 for w in want)


def test_sql_hmac_keeps_null():
    con = duckdb.connect()
    assert con.execute(f"select {hmac_sql('null::varchar', b'k')}").fetchone() == (None,)


def test_generated_key_is_private_and_stable(tmp_path, monkeypatch):
    monkeypatch.delenv("YIBAO_PSEUDONYM_KEY", raising=False)
    first = load_key(tmp_path / "secrets")
    assert load_key(tmp_path / "secrets") == first
    mode = stat.S_IMODE(os.stat(tmp_path / "secrets" / "pseudonym.key").st_mode)
    assert mode == 0o600
    assert len(first) == 64


def test_key_from_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("YIBAO_PSEUDONYM_KEY", "from-env")
    assert load_key(tmp_path / "secrets") == b"from-env"
    assert not (tmp_path / "secrets" / "pseudonym.key").exists()


def test_key_id_names_a_key_without_revealing_it():
    first, again, other = key_id(b"secret-key"), key_id(b"secret-key"), key_id(b"other-key")
    assert first == again and first != other
    assert len(first) == 16 and int(first, 16) >= 0
    assert "secret" not in first
