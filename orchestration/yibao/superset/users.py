"""`yibao users add`: Superset users with Yibao's roles.

- `national`: every dashboard and dataset, all regions.
- `provincial` (with a province, e.g. 37): the same dashboards, but row-level security
  on every dataset with a region column keeps only that province's rows (role
  `provincial_37`, one RLS filter per dataset).
- `analyst`: SQL Lab on the published warehouse (read-only: the database refuses DML,
  CTAS and CVAS) and every dataset.

The work runs in Superset's own app context (a child process with the home's Superset
configuration), so it works whether or not `yibao serve` is running. The password goes
to the child in its environment, never on a command line.
"""

from __future__ import annotations

import json
import re

from yibao.config import Settings
from yibao.superset.setup import _run_python, bootstrap

ROLES = ("national", "provincial", "analyst")

# The row-level security clause of each dataset with a region column, for province PP
# (its code prefix) or PP0000 (its province code). Datasets not listed carry no region.
RLS_CLAUSES = {
    "coverage_monthly": "substr(admdvs, 1, 2) = '{pp}'",
    "fund_balance_monthly": "substr(admdvs, 1, 2) = '{pp}'",
    "supervision_funnel_monthly": "substr(admdvs, 1, 2) = '{pp}'",
    "rule_hits": "substr(admdvs, 1, 2) = '{pp}'",
    "rule_hits_monthly": "province = '{pp}0000'",
    "cross_province_settlement_monthly": (
        "insured_province = '{pp}0000' or treatment_province = '{pp}0000'"
    ),
    "batches": "substr(admdvs, 1, 2) = '{pp}'",
    "quarantine": "path like '%/admdvs={pp}%'",
}

RLS_SCRIPT = """
import json
import os
import re
from superset.app import create_app

app = create_app()
with app.app_context():
    from superset.connectors.sqla.models import RowLevelSecurityFilter, SqlaTable
    from superset.extensions import db, security_manager as sm

    spec = json.loads(os.environ["YIBAO_USER_SPEC"])

    def grant(role, kind):
        # Superset's own read-only role first, then what Yibao's role may see.
        for name in {"analyst": ["Gamma", "sql_lab"]}.get(kind, ["Gamma"]):
            for pv in sm.find_role(name).permissions:
                sm.add_permission_role(role, pv)
        perms = ["all_datasource_access"]
        if kind == "analyst":
            perms.append("all_database_access")
        for perm in perms:
            sm.add_permission_role(role, sm.find_permission_view_menu(perm, perm))

    def restrict(role, pp):
        # One RLS filter per dataset with a region column: only province pp's rows.
        for table_name, clause in spec["clauses"].items():
            name = f"{role.name} {table_name}"
            rls = db.session.query(RowLevelSecurityFilter).filter_by(name=name).one_or_none()
            if rls is None:
                rls = RowLevelSecurityFilter(name=name, filter_type="Regular")
                db.session.add(rls)
            rls.clause = clause.format(pp=pp)
            rls.description = f"Yibao: {role.name} sees only province {pp}"
            rls.tables = db.session.query(SqlaTable).filter_by(table_name=table_name).all()
            rls.roles = [role]

    if spec.get("username"):
        role = sm.find_role(spec["role_name"]) or sm.add_role(spec["role_name"])
        grant(role, spec["role"])
    # Every provincial role, this one included: datasets imported since get their filter.
    for role in sm.get_all_roles():
        match = re.fullmatch(r"provincial_([0-9]{2})", role.name)
        if match:
            restrict(role, match.group(1))
    db.session.commit()
    if spec.get("username"):
        password = os.environ["YIBAO_USER_PASSWORD"]
        user = sm.find_user(username=spec["username"])
        if user is None:
            user = sm.add_user(spec["username"], spec["username"], "Yibao",
                               spec["username"] + "@yibao.invalid", role, password=password)
            if not user:
                raise SystemExit("Superset refused to create the user")
        else:
            user.roles = [role]
            db.session.commit()
            sm.reset_password(user.id, password)
"""


class UserError(ValueError):
    """A wrong role or province: the command line's fault."""


def role_name(role: str, province: str | None) -> str:
    if role not in ROLES:
        raise UserError(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    if role == "provincial":
        if not province or not re.fullmatch(r"[1-8][0-9]", province):
            raise UserError("--role provincial needs --province PP, a 2-digit GB/T 2260 prefix")
        return f"provincial_{province}"
    if province:
        raise UserError(f"--province goes with --role provincial, not {role}")
    return role


def add_user(settings: Settings, username: str, password: str, role: str, province=None) -> str:
    """Create or update a Superset user with a Yibao role; returns the role's name."""
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{2,64}", username):
        raise UserError("--username: 2-64 letters, digits or _ . @ -")
    if len(password) < 12:
        raise UserError("--password: at least 12 characters")
    name = role_name(role, province)
    bootstrap(settings)  # the metadata database exists even before the first `serve`
    spec = {"username": username, "role": role, "role_name": name, "clauses": RLS_CLAUSES}
    _run_python(
        settings,
        RLS_SCRIPT,
        {"YIBAO_USER_SPEC": json.dumps(spec), "YIBAO_USER_PASSWORD": password},
        log=settings.logs / "superset-users.log",
    )
    return name


def refresh_row_level_security(settings: Settings) -> None:
    """Give every provincial role its filter on every dataset (after an import)."""
    _run_python(
        settings,
        RLS_SCRIPT,
        {"YIBAO_USER_SPEC": json.dumps({"clauses": RLS_CLAUSES})},
        log=settings.logs / "superset-users.log",
    )
