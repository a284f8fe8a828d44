"""The rule base measured against the simulator's ground truth.

Every abuse and data-quality pattern the simulator plants is written to
`<home>/truth/defects.csv` with its key (a settlement id, or a person number for
patterns that belong to a person or an enrollment). Each rule is scored on the
pattern it is meant to find: precision (hits that are planted) and recall (planted
instances it hits). Planted settlements that the door quarantined never reach the
rules and are left out of the truth. Rules with no planted pattern (a practitioner
not valid or registered elsewhere) are scored on precision alone: every hit there
is a false positive, since the simulator's normal data never breaks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from yibao.config import Settings
from yibao.publish import live_version_path

# rule_id -> (defect type in the truth, key the truth uses: setl_id or psn_no)
PLANTED_AS: dict[str, tuple[str | None, str]] = {
    "R001": ("sex_conflict", "setl_id"),
    "R002": ("sex_conflict", "setl_id"),
    "R003": ("age_conflict", "setl_id"),
    "R004": ("age_conflict", "setl_id"),
    "R005": ("age_conflict", "setl_id"),
    "R006": ("age_conflict", "setl_id"),
    "R007": ("age_conflict", "setl_id"),
    "R008": ("unregistered_practitioner", "setl_id"),
    "R009": (None, "setl_id"),
    "R010": (None, "setl_id"),
    "R011": ("repeat_imaging", "setl_id"),
    "R012": ("los_over_limit", "setl_id"),
    "R013": ("excluded_item_billed", "setl_id"),
    "R014": ("class_c_paid_by_fund", "setl_id"),
    "R015": ("fee_lines_not_adding_up", "setl_id"),
    "R016": ("line_not_qty_x_price", "setl_id"),
    "R017": ("amount_identity_broken", "setl_id"),
    "R018": ("unknown_code", "setl_id"),
    "R019": ("split_hospitalisation", "setl_id"),
    "R020": ("overlapping_stays", "setl_id"),
    "R021": ("high_frequency_visits", "psn_no"),
    "R022": ("after_agreement_end", "setl_id"),
    "R023": ("no_bed_or_nursing", "setl_id"),
    "R024": ("duplicate_enrollment", "psn_no"),
}


@dataclass(frozen=True)
class RuleScore:
    rule_id: str
    defect: str | None
    hits: int  # distinct keys the rule fired on
    true_positives: int
    planted: int  # planted instances of the defect (all rules of that defect together)
    found_by_group: int  # planted instances found by any rule of that defect

    @property
    def precision(self) -> float:
        return self.true_positives / self.hits if self.hits else 1.0

    @property
    def recall(self) -> float | None:
        """Recall of the defect by all the rules that look for it (sex conflict is found
        by the diagnosis and the procedure rule together)."""
        if self.defect is None:
            return None
        return self.found_by_group / self.planted if self.planted else 1.0


def measure(settings: Settings, truth_csv: Path | None = None) -> list[RuleScore]:
    """Score every rule of the published warehouse against `<home>/truth/defects.csv`."""
    truth_csv = truth_csv or settings.truth / "defects.csv"
    con = duckdb.connect(config={"threads": settings.threads, "memory_limit": "1GB"})
    try:
        con.execute(f"attach '{live_version_path(settings)}' as wh (read_only)")
        con.execute(
            "create temp table planted as "
            "select defect_type, key from read_csv($p, header = true, all_varchar = true) "
            # settlements the door quarantined never reach the rules
            "where key not in (select json_extract_string(record, '$.setl_id') "
            "from wh.ops.quarantine where json_extract_string(record, '$.setl_id') is not null)",
            {"p": str(truth_csv)},
        )
        con.execute("create temp table mapping (rule_id varchar, defect varchar, key_kind varchar)")
        con.executemany(
            "insert into mapping values (?, ?, ?)",
            [(r, d, k) for r, (d, k) in PLANTED_AS.items()],
        )
        con.execute(
            """
            create temp table hit_keys as
            select distinct
                h.rule_id,
                m.defect,
                case m.key_kind when 'psn_no' then h.psn_no else h.setl_id end as key
            from wh.marts.rule_hits as h
            inner join mapping as m on m.rule_id = h.rule_id
            """
        )
        rows = con.execute(
            """
            with per_rule as (
                select
                    m.rule_id,
                    m.defect,
                    count(distinct k.key) as hits,
                    count(distinct case when p.key is not null then k.key end) as tp
                from mapping as m
                left join hit_keys as k on k.rule_id = m.rule_id
                left join planted as p on p.defect_type = m.defect and p.key = k.key
                group by m.rule_id, m.defect
            ),
            per_defect as (
                select
                    p.defect_type as defect,
                    count(distinct p.key) as planted,
                    count(distinct case when k.key is not null then p.key end) as found
                from planted as p
                left join hit_keys as k on k.defect = p.defect_type and k.key = p.key
                group by p.defect_type
            )
            select
                per_rule.rule_id,
                per_rule.defect,
                per_rule.hits,
                per_rule.tp,
                coalesce(per_defect.planted, 0),
                coalesce(per_defect.found, 0)
            from per_rule
            left join per_defect on per_defect.defect = per_rule.defect
            order by per_rule.rule_id
            """
        ).fetchall()
    finally:
        con.close()
    return [RuleScore(*row) for row in rows]


def markdown_table(scores: list[RuleScore]) -> str:
    lines = [
        "| rule | planted pattern | hits | true positives | precision | planted | recall |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for s in scores:
        recall = "—" if s.recall is None else f"{s.recall:.3f}"
        lines.append(
            f"| {s.rule_id} | {s.defect or '(none planted)'} | {s.hits} | {s.true_positives} "
            f"| {s.precision:.3f} | {s.planted if s.defect else '—'} | {recall} |"
        )
    return "\n".join(lines)
