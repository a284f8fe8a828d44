"""The command line as an operator meets it: one-line errors, non-zero exits."""

import pytest

from tests.conftest import run_yibao
from yibao.cli import format_table, main


@pytest.mark.parametrize(
    "args, fragment",
    [
        ([], "required"),
        (["frobnicate"], "invalid choice"),
        (["generate", "--scale", "huge"], "invalid choice"),
        (["generate", "--provinces", "3x"], "2-digit codes"),
        (["generate", "--provinces", "99"], "province code"),
        (["generate", "--months", "2024-03:2024-01"], "ends before"),
        (["sql", "--format", "xml", "select 1"], "invalid choice"),
    ],
)
def test_bad_arguments_give_one_line(home, capsys, monkeypatch, args, fragment):
    monkeypatch.setenv("YIBAO_HOME", str(home))
    code = main(args)
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("yibao: ")
    assert fragment in err


def test_sql_before_any_run(home, capsys):
    assert main(["--home", str(home), "sql", "select 1"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"yibao: no published warehouse in {home}: run `yibao run` first"


def test_run_without_landing(home, capsys):
    assert main(["run", "--home", str(home)]) == 1
    assert "run `yibao generate` first" in capsys.readouterr().err


def test_console_script_exit_code_and_one_line(home):
    proc = run_yibao(home, "generate", "--scale", "galactic", check=False)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1


def test_format_table():
    text = format_table(["a", "bb"], [(1, None), ("long", 2)])
    assert text.splitlines() == ["a     bb", "----  --", "1", "long  2", "(2 rows)"]
