"""`yibao`: the command operators and scheduled jobs call (contract: cli.md).

Thin: parse the arguments, then call the modules that do the work. Every failure
ends with one line on stderr, `yibao: <reason>`, and a non-zero exit.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from yibao.config import Settings

EXIT_FAILED = 1  # the work ran and failed (a blocking check, a broken file, ...)
EXIT_USAGE = 2  # the command line itself is wrong


class CliError(Exception):
    """A failure the operator can act on: printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise CliError(f"{message} (see `{self.prog} --help`)")

    def exit(self, status: int = 0, message: str | None = None) -> None:
        if status:
            raise CliError((message or "").strip() or "invalid arguments")
        super().exit(status, message)


def _provinces(text: str) -> list[str]:
    codes = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in codes if not (len(c) == 2 and c.isdigit())]
    if bad or not codes:
        raise argparse.ArgumentTypeError(
            f"provinces are 2-digit codes separated by commas (e.g. 37,44), got {text!r}"
        )
    return codes


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="yibao", description="Yibao (医保) regulatory analytics warehouse")
    parser.add_argument(
        "--home",
        help="folder of landing files, warehouse versions and service state "
        "(default: $YIBAO_HOME, else ./var)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    home_parent = _Parser(add_help=False)
    home_parent.add_argument("--home", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    gen = sub.add_parser("generate", parents=[home_parent], help="write synthetic source extracts")
    gen.add_argument("--scale", choices=["tiny", "small", "medium", "large"], default="tiny")
    gen.add_argument("--months", default="2024-01:2024-03", help="YYYY-MM:YYYY-MM, inclusive")
    gen.add_argument("--provinces", type=_provinces, help="2-digit codes, e.g. 37,44")
    gen.add_argument(
        "--regions",
        choices=["core", "all"],
        help="pooling regions: core (capitals and the five plan-listed cities) or all 357; "
        "default: tiny core, the other tiers all",
    )
    gen.add_argument("--seed", type=int, default=20240101)
    gen.add_argument(
        "--defect",
        action="append",
        metavar="NAME=RATE",
        help="set a planted defect's rate (repeatable), e.g. sex_conflict=0.01 or gzip=0",
    )
    gen.add_argument(
        "--format",
        choices=["mixed", "csv", "parquet"],
        default="mixed",
        help="mixed: CSV with planted delivery variants (default); csv/parquet: one format, "
        "no delivery or row-level defects",
    )
    gen.add_argument(
        "--resend",
        action="store_true",
        help="only deliver the re-sent batches waiting in <home>/outbox, then stop",
    )

    run = sub.add_parser(
        "run", parents=[home_parent], help="ingest, build, validate and publish (one pass)"
    )
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild the incremental models from scratch (after a model's logic changed)",
    )

    sql = sub.add_parser("sql", parents=[home_parent], help="query the published warehouse")
    sql.add_argument("--format", choices=["table", "csv", "json"], default="table")
    sql.add_argument("query", help='e.g. "select count(*) from marts.coverage_monthly"')

    sub.add_parser(
        "rollback", parents=[home_parent], help="make the previous published version live again"
    )
    sub.add_parser(
        "serve", parents=[home_parent], help="serve the Dagster UI and Superset until stopped"
    )
    users = sub.add_parser("users", parents=[home_parent], help="Superset users and roles")
    users_sub = users.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    users_sub.required = True
    add = users_sub.add_parser(
        "add", parents=[home_parent], help="create or update a user with a Yibao role"
    )
    add.add_argument("--username", required=True)
    add.add_argument(
        "--password",
        help="at least 12 characters; default: the YIBAO_USER_PASSWORD environment variable",
    )
    add.add_argument("--role", required=True, choices=["national", "provincial", "analyst"])
    add.add_argument("--province", help="2-digit province prefix for --role provincial, e.g. 37")
    dash = sub.add_parser("dashboards", parents=[home_parent], help="dashboards as code")
    dash_sub = dash.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    dash_sub.required = True
    dash_sub.add_parser(
        "export",
        parents=[home_parent],
        help="write the dashboards as edited in Superset back into dashboards/",
    )

    bench = sub.add_parser(
        "bench", parents=[home_parent], help="time every phase; write <home>/bench/report.*"
    )
    bench.add_argument("--scale", choices=["tiny", "small", "medium", "large"], default="small")

    sub.add_parser(
        "prepare", parents=[home_parent], help="parse the dbt project (done by `make setup`)"
    )
    return parser


# -- commands ------------------------------------------------------------------
def cmd_generate(settings: Settings, args: argparse.Namespace) -> int:
    from yibao.simulate.defects import parse_overrides
    from yibao.simulate.generator import generate, resend

    if args.resend:
        sent = resend(settings.home)
        print(f"re-sent {len(sent)} batch(es) into {settings.landing}")
        for rel in sent:
            print(f"  {rel}")
        return 0
    started = time.monotonic()
    try:
        rates = parse_overrides(args.defect)
        counts = generate(
            settings.home,
            args.scale,
            args.months,
            args.provinces,
            args.seed,
            rates,
            args.format,
            regions=args.regions,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    rows = ", ".join(f"{feed} {n}" for feed, n in counts.items())
    print(
        f"generated {args.scale} sample in {settings.landing} "
        f"({rows} rows) in {time.monotonic() - started:.1f}s"
    )
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from yibao.pipeline import PipelineBusy, run_pipeline

    if not settings.landing.exists():
        raise CliError(f"no landing folder at {settings.landing}: run `yibao generate` first")
    try:
        run = run_pipeline(
            settings, announce=lambda line: print(line, flush=True), full_refresh=args.full_refresh
        )
    except PipelineBusy as exc:
        raise CliError(str(exc)) from exc
    return _report_run(run.result, run.seconds)


MAX_PROBLEM_LINES = 30


def _report_run(result, seconds: float) -> int:
    summary = "nothing ingested"
    problems: list[str] = []
    for mat in result.get_asset_materialization_events():
        m = mat.materialization
        if m.asset_key.path == ["warehouse", "published"]:
            print(
                f"published version {m.metadata['version'].value} ({seconds:.1f}s, "
                f"run {result.run_id})"
            )
        elif m.asset_key.path[0] == "raw" and "summary" in m.metadata:
            summary = m.metadata["summary"].value
            if "problems" in m.metadata and m.metadata["problems"].value:
                problems.extend(m.metadata["problems"].value.splitlines())
    print(f"ingest: {summary}")
    # Which file, which line, why: one line each (the first few; ops.quarantine has all).
    for line in problems[:MAX_PROBLEM_LINES]:
        print(f"  {line}")
    if len(problems) > MAX_PROBLEM_LINES:
        more = len(problems) - MAX_PROBLEM_LINES
        print(f"  ... {more} more lines: see ops.quarantine and ops.batches")
    import dagster as dg

    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    for e in failed:
        if e.severity == dg.AssetCheckSeverity.WARN:  # recorded in marts.dq_results too
            print(f"  warning: {e.asset_check_key.name} on {e.asset_key.to_user_string()}: "
                  f"{e.description}")  # fmt: skip
    if result.success:
        return 0
    reasons = [
        f"check {e.asset_check_key.name} on {e.asset_key.to_user_string()} failed: {e.description}"
        for e in failed
        if e.severity == dg.AssetCheckSeverity.ERROR
    ]
    if not reasons:
        reasons = [
            f"{e.step_key}: {_root_error(e.step_failure_data.error)}"
            for e in result.get_step_failure_events()
            if e.step_failure_data and e.step_failure_data.error
        ]
    reason = "; ".join(reasons) or "see the run in the Dagster UI"
    raise CliError(f"run {result.run_id} failed, live warehouse unchanged: {reason}")


def _root_error(error) -> str:
    """The first line of the innermost cause of a step's error: Dagster wraps the
    exception of the code it ran in "Error occurred while executing op ...", which does
    not say why."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip().splitlines()[0]


def _json_default(value: object) -> object:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def cmd_sql(settings: Settings, args: argparse.Namespace) -> int:
    import duckdb

    from yibao.publish import NothingPublished, connect_live

    try:
        con = connect_live(settings)
    except NothingPublished as exc:
        raise CliError(str(exc)) from exc
    try:
        cursor = con.execute(args.query)
        columns = [d[0] for d in cursor.description or []]
        rows = cursor.fetchall()
    except duckdb.Error as exc:
        raise CliError(str(exc).strip().splitlines()[0]) from exc
    finally:
        con.close()
    out = sys.stdout
    if args.format == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    elif args.format == "json":
        json.dump(
            [dict(zip(columns, r, strict=True)) for r in rows],
            out,
            default=_json_default,
            ensure_ascii=False,
        )
        out.write("\n")
    else:
        out.write(format_table(columns, rows))
    return 0


def format_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    footer = f"({len(rows)} row{'s' if len(rows) != 1 else ''})"
    return "\n".join([line, rule, *body, footer]) + "\n"


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from yibao.serve import Endpoints, describe, running, serve

    current = running(settings)
    if current:
        print("already serving from this home:\n" + describe(current))
        return 0
    from yibao.pipeline import write_dagster_yaml

    settings.export_env()
    write_dagster_yaml(settings)
    try:
        return serve(settings, Endpoints.from_env())
    except RuntimeError as exc:
        raise CliError(str(exc)) from exc


def cmd_dashboards(settings: Settings, args: argparse.Namespace) -> int:
    from yibao.serve import running
    from yibao.superset.api import SupersetClient, SupersetError
    from yibao.superset.bundle import DASHBOARDS_DIR, export_bundle
    from yibao.superset.setup import ADMIN_USERNAME, admin_password

    current = running(settings)
    if not current:
        raise CliError("Superset is not running for this home: start `yibao serve` first")
    password, _ = admin_password(settings)
    try:
        client = SupersetClient(current["superset_url"], ADMIN_USERNAME, password)
        written = export_bundle(client, settings)
    except (SupersetError, RuntimeError) as exc:
        raise CliError(str(exc)) from exc
    print(f"wrote {len(written)} files into {DASHBOARDS_DIR}: review with `git diff dashboards/`")
    return 0


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    from yibao.bench.run import bench
    from yibao.pipeline import PipelineBusy

    print(f"benchmarking scale {args.scale} in {settings.home / 'bench'} ...", flush=True)
    try:
        report = bench(settings.home, args.scale)
    except (PipelineBusy, RuntimeError) as exc:
        raise CliError(str(exc)) from exc
    print((settings.home / "bench" / "report.md").read_text())
    missed = [t["target"] for t in report["targets"] if not t["met"]]
    if missed:
        print(f"targets missed: {'; '.join(missed)} (see report.md)")
    return 0


def cmd_users(settings: Settings, args: argparse.Namespace) -> int:
    from yibao.superset.users import UserError, add_user

    password = args.password or os.environ.get("YIBAO_USER_PASSWORD")
    if not password:
        raise CliError("users add: give --password or set YIBAO_USER_PASSWORD")
    try:
        role = add_user(settings, args.username, password, args.role, args.province)
    except UserError as exc:
        raise CliError(f"users add: {exc}") from exc
    except RuntimeError as exc:
        raise CliError(str(exc)) from exc
    print(f"user {args.username} has role {role}")
    return 0


def cmd_rollback(settings: Settings, args: argparse.Namespace) -> int:
    from yibao.pipeline import PipelineBusy, RunLock
    from yibao.publish import NothingPublished, rollback

    try:
        with RunLock(settings.run_lock):  # never while a run may publish
            back = rollback(settings)
    except (NothingPublished, PipelineBusy) as exc:
        raise CliError(str(exc)) from exc
    print(f"live warehouse is now {back.version}")
    return 0


def cmd_prepare(settings: Settings, args: argparse.Namespace) -> int:
    settings.export_env()
    from yibao.dbt import ensure_manifest

    print(f"dbt manifest ready: {ensure_manifest()}")
    return 0


COMMANDS = {
    "generate": cmd_generate,
    "run": cmd_run,
    "sql": cmd_sql,
    "serve": cmd_serve,
    "dashboards": cmd_dashboards,
    "bench": cmd_bench,
    "rollback": cmd_rollback,
    "users": cmd_users,
    "prepare": cmd_prepare,
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        settings = Settings.from_env(args.home)
        return COMMANDS[args.command](settings, args)
    except CliError as exc:
        print(f"yibao: {exc}", file=sys.stderr)
        return EXIT_USAGE if "--help" in str(exc) else EXIT_FAILED
    except KeyboardInterrupt:
        print("yibao: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `yibao sql ... | head`: the reader has what it wanted. Point stdout at /dev/null
        # so that the interpreter's own flush at exit does not fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
