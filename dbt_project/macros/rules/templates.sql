{#- Rule templates: one macro per kind of check, each a select of the settlements (or
    enrollments) where the rule fires, with the money attributable to the breach
    (suspect_amt, yuan) and a line of evidence. Parameters come from the rule's row
    in the rule base; thresholds live there, not here. The settlements, fee lines,
    code restrictions and month ends are read through rule_input(rule, name), so that
    int_rule_hits can hand a rule only the part it rebuilds. -#}

{#- Diagnosis or procedure reserved to the other sex. -#}
{% macro rule_code_sex_conflict(rule) -%}
select
    {{ rule_settlement_columns('s') }},
    max(s.fund_pay_sumamt) as suspect_amt,
    min(r.code_system || ' ' || r.code || ' in ' || r.range_id || ' is for sex ' || r.sex
        || '; patient sex ' || s.gend) as evidence
from {{ rule_input(rule, 'code_restrictions') }} as r
inner join {{ rule_input(rule, 'int_rule_settlements') }} as s
    on s.setl_id = r.setl_id
where r.code_system = '{{ rule["code_system"] }}'
    and r.sex is not null
    and s.gend in ('1', '2')
    and s.gend <> r.sex
group by s.setl_id, s.psn_no, s.period, s.mdtrtarea_admvs
{%- endmacro %}

{#- Diagnosis or procedure of a restriction (maternity, perinatal, ...) outside its ages. -#}
{% macro rule_code_age_conflict(rule) -%}
select
    {{ rule_settlement_columns('s') }},
    max(s.fund_pay_sumamt) as suspect_amt,
    min(r.code_system || ' ' || r.code || ' in ' || r.range_id || ' is for ages '
        || coalesce(cast(r.age_min as {{ dbt.type_string() }}), '0') || '-'
        || coalesce(cast(r.age_max as {{ dbt.type_string() }}), '') || '; patient aged '
        || cast(s.age_years as {{ dbt.type_string() }})) as evidence
from {{ rule_input(rule, 'code_restrictions') }} as r
inner join {{ rule_input(rule, 'int_rule_settlements') }} as s
    on s.setl_id = r.setl_id
where r.restriction = '{{ rule["restriction"] }}'
    {%- if rule["code_system"] not in (none, '', 'any') %}
    and r.code_system = '{{ rule["code_system"] }}'
    {%- endif %}
    and s.age_years is not null
    and (s.age_years < r.age_min or s.age_years > r.age_max)
group by s.setl_id, s.psn_no, s.period, s.mdtrtarea_admvs
{%- endmacro %}

{#- Attending practitioner in no snapshot of the register. -#}
{% macro rule_practitioner_unregistered(rule) -%}
select
    {{ rule_settlement_columns('s') }},
    s.fund_pay_sumamt as suspect_amt,
    'practitioner ' || s.atddr_no || ' is not in the register' as evidence
from {{ rule_input(rule, 'int_rule_settlements') }} as s
left join (select distinct dr_code from {{ ref('dim_practitioners') }}) as p
    on p.dr_code = s.atddr_no
where s.atddr_no is not null
    and p.dr_code is null
{%- endmacro %}

{#- The register entry in force in the settlement's month, for the two rules below. -#}
{% macro _practitioner_in_force(rule) -%}
from {{ rule_input(rule, 'int_rule_settlements') }} as s
inner join {{ ref('dim_practitioners') }} as p
    on p.dr_code = s.atddr_no
    and p.valid_from <= s.period
    and (p.valid_to is null or p.valid_to > s.period)
{%- endmacro %}

{% macro rule_practitioner_invalid(rule) -%}
select
    {{ rule_settlement_columns('s') }},
    s.fund_pay_sumamt as suspect_amt,
    'practitioner ' || s.atddr_no || ' has vali_flag ' || coalesce(p.vali_flag, 'null')
        || ' in the register since ' || cast(p.valid_from as {{ dbt.type_string() }}) as evidence
{{ _practitioner_in_force(rule) }}
where coalesce(p.vali_flag, '0') <> '1'
{%- endmacro %}

{% macro rule_practitioner_elsewhere(rule) -%}
select
    {{ rule_settlement_columns('s') }},
    s.fund_pay_sumamt as suspect_amt,
    'practitioner ' || s.atddr_no || ' is registered at ' || p.fixmedins_code as evidence
{{ _practitioner_in_force(rule) }}
where p.fixmedins_code <> s.fixmedins_code
{%- endmacro %}

{#- Imaging lines (CT, MRI, PET) with the person of their settlement: the fee lines do
    not carry the pseudonym (int_rule_fee_lines says why), and imaging lines are few. -#}
{% macro rule_imaging_lines(rule) -%}
    (
        select
            lines.setl_id,
            lines.item_flag,
            lines.service_date,
            lines.fund_share_amt,
            settlements.person_key
        from {{ rule_input(rule, 'int_rule_fee_lines') }} as lines
        inner join {{ rule_input(rule, 'int_rule_settlements') }} as settlements
            on settlements.setl_id = lines.setl_id
        where lines.item_flag like 'imaging%'
    )
{%- endmacro %}

{#- The same imaging modality billed again for the person within the window. -#}
{% macro rule_repeat_imaging(rule) -%}
select
    {{ rule_settlement_columns('s') }},
    least(sum(later.fund_share_amt), max(s.fund_pay_sumamt)) as suspect_amt,
    min(later.item_flag || ' on ' || cast(later.service_date as {{ dbt.type_string() }})
        || ' after one on ' || cast(earlier.service_date as {{ dbt.type_string() }})
        || ' (settlement ' || earlier.setl_id || ')') as evidence
from {{ rule_imaging_lines(rule) }} as later
inner join {{ rule_imaging_lines(rule) }} as earlier
    on earlier.person_key = later.person_key
    and earlier.item_flag = later.item_flag
    and earlier.setl_id <> later.setl_id
    and earlier.service_date <= later.service_date
    and {{ dbt.datediff('earlier.service_date', 'later.service_date', 'day') }} < {{ rule["window_days"] }}
inner join {{ rule_input(rule, 'int_rule_settlements') }} as s
    on s.setl_id = later.setl_id
-- Two scans on the same day: the later settlement id is the repeat.
where (earlier.service_date < later.service_date or earlier.setl_id < later.setl_id)
group by s.setl_id, s.psn_no, s.period, s.mdtrtarea_admvs
{%- endmacro %}

{#- A stay longer than the limit of its diagnosis; the excess days' share of the fund. -#}
{% macro rule_los_over_limit(rule) -%}
select
    {{ rule_settlement_columns('s') }},
    s.fund_pay_sumamt * (s.stay_days - l.max_los_days) / s.stay_days as suspect_amt,
    'stay of ' || cast(s.stay_days as {{ dbt.type_string() }}) || ' days for ' || s.diag_code
        || ', limit ' || cast(l.max_los_days as {{ dbt.type_string() }}) as evidence
from {{ rule_input(rule, 'int_rule_settlements') }} as s
inner join (
    select
        {{ normalise_code('diag_code') }} as code_norm,
        max_los_days
    from {{ ref('los_limits') }}
) as l
    on substr(s.diag_norm, 1, length(l.code_norm)) = l.code_norm
where s.is_inpatient
    and s.stay_days > l.max_los_days
{%- endmacro %}

{#- A catalogue class (excluded items, or class C) billed with the fund bearing part. -#}
{% macro rule_catalogue_item_paid(rule) -%}
select
    {{ rule_settlement_columns('s') }},
    sum(f.fund_share_amt) as suspect_amt,
    min(f.hilist_code || ' (' || coalesce(f.item_flag, 'class ' || f.catalogue_class)
        || ') self-pay ratio ' || cast(coalesce(f.selfpay_prop, 0) as {{ dbt.type_string() }})) as evidence
from {{ rule_input(rule, 'int_rule_fee_lines') }} as f
inner join {{ rule_input(rule, 'int_rule_settlements') }} as s
    on s.setl_id = f.setl_id
where coalesce(f.selfpay_prop, 0) < 1
    {%- if rule["restriction"] == 'excluded' %}
    and f.is_excluded
    {%- elif rule["restriction"] == 'class_c' %}
    and f.catalogue_class = '03'
    and not f.is_excluded
    {%- else %}
    {{ exceptions.raise_compiler_error("rule " ~ rule['rule_id'] ~ ": restriction must be excluded or class_c") }}
    {%- endif %}
group by s.setl_id, s.psn_no, s.period, s.mdtrtarea_admvs
{%- endmacro %}

{#- Fee lines whose code is not in the catalogue. -#}
{% macro rule_unknown_catalogue_code(rule) -%}
select
    {{ rule_settlement_columns('s') }},
    sum(f.fund_share_amt) as suspect_amt,
    min('item ' || f.hilist_code || ' is not in the catalogue') as evidence
from {{ rule_input(rule, 'int_rule_fee_lines') }} as f
inner join {{ rule_input(rule, 'int_rule_settlements') }} as s
    on s.setl_id = f.setl_id
where not f.in_catalogue
group by s.setl_id, s.psn_no, s.period, s.mdtrtarea_admvs
{%- endmacro %}

{#- The fee lines do not add up to the settlement's total cost. -#}
{% macro rule_fee_lines_total_mismatch(rule) -%}
select
    {{ rule_settlement_columns('s') }},
    least(abs(f.lines_total - s.delivered_medfee_sumamt), s.fund_pay_sumamt) as suspect_amt,
    'fee lines sum to ' || cast(f.lines_total as {{ dbt.type_string() }}) || ', medfee_sumamt '
        || cast(s.delivered_medfee_sumamt as {{ dbt.type_string() }}) as evidence
from {{ rule_input(rule, 'int_rule_settlements') }} as s
inner join (
    select
        setl_id,
        sum(det_item_fee_sumamt) as lines_total
    from {{ rule_input(rule, 'int_rule_fee_lines') }}
    group by setl_id
) as f
    on f.setl_id = s.setl_id
where abs(f.lines_total - s.delivered_medfee_sumamt) > {{ rule["threshold"] }}
{%- endmacro %}

{#- A line whose total is not quantity × unit price. -#}
{% macro rule_line_qty_price_mismatch(rule) -%}
select
    {{ rule_settlement_columns('s') }},
    least(sum(abs(f.det_item_fee_sumamt - round(f.cnt * f.pric, 2))), max(s.fund_pay_sumamt)) as suspect_amt,
    min('line ' || f.feedetl_sn || ': ' || cast(f.cnt as {{ dbt.type_string() }}) || ' x '
        || cast(f.pric as {{ dbt.type_string() }}) || ' billed as '
        || cast(f.det_item_fee_sumamt as {{ dbt.type_string() }})) as evidence
from {{ rule_input(rule, 'int_rule_fee_lines') }} as f
inner join {{ rule_input(rule, 'int_rule_settlements') }} as s
    on s.setl_id = f.setl_id
where abs(f.det_item_fee_sumamt - round(f.cnt * f.pric, 2)) > {{ rule["threshold"] }}
group by s.setl_id, s.psn_no, s.period, s.mdtrtarea_admvs
{%- endmacro %}

{#- fund_pay_sumamt is not the sum of the seven funds. -#}
{% macro rule_amount_identity_broken(rule) -%}
select
    {{ rule_settlement_columns('s') }},
    abs(s.delivered_fund_pay_sumamt - s.delivered_funds_total) as suspect_amt,
    'fund_pay_sumamt ' || cast(s.delivered_fund_pay_sumamt as {{ dbt.type_string() }})
        || ', funds sum to ' || cast(s.delivered_funds_total as {{ dbt.type_string() }}) as evidence
from {{ rule_input(rule, 'int_rule_settlements') }} as s
where abs(s.delivered_fund_pay_sumamt - s.delivered_funds_total) > {{ rule["threshold"] }}
{%- endmacro %}

{#- Inpatient stays in date order per person and institution, for split admissions. -#}
{% macro rule_split_hospitalisation(rule) -%}
select
    setl_id,
    psn_no,
    period,
    admdvs,
    fund_pay_sumamt as suspect_amt,
    'admitted ' || cast(begndate as {{ dbt.type_string() }}) || ', '
        || cast({{ dbt.datediff('previous_enddate', 'begndate', 'day') }} as {{ dbt.type_string() }})
        || ' day(s) after discharge of ' || previous_setl_id as evidence
from (
    select
        {{ rule_settlement_columns('s') }},
        s.begndate,
        s.fund_pay_sumamt,
        lag(s.enddate) over (
            partition by s.person_key, s.fixmedins_code order by s.begndate, s.setl_id
        ) as previous_enddate,
        lag(s.setl_id) over (
            partition by s.person_key, s.fixmedins_code order by s.begndate, s.setl_id
        ) as previous_setl_id
    from {{ rule_input(rule, 'int_rule_settlements') }} as s
    where s.is_inpatient
) as stays
where previous_enddate is not null
    and begndate >= previous_enddate
    and {{ dbt.datediff('previous_enddate', 'begndate', 'day') }} <= {{ rule["window_days"] }}
{%- endmacro %}

{#- Two stays of one person overlap; the later admission is flagged. -#}
{% macro rule_overlapping_stays(rule) -%}
select
    {{ rule_settlement_columns('b') }},
    max(b.fund_pay_sumamt) as suspect_amt,
    min('stay ' || cast(b.begndate as {{ dbt.type_string() }}) || '..'
        || cast(b.enddate as {{ dbt.type_string() }}) || ' overlaps ' || a.setl_id || ' ('
        || cast(a.begndate as {{ dbt.type_string() }}) || '..'
        || cast(a.enddate as {{ dbt.type_string() }}) || ')') as evidence
from {{ rule_input(rule, 'int_rule_settlements') }} as b
inner join {{ rule_input(rule, 'int_rule_settlements') }} as a
    on a.person_key = b.person_key
    and a.setl_id <> b.setl_id
    and a.begndate < b.enddate
    and b.begndate < a.enddate
    and (a.begndate < b.begndate or (a.begndate = b.begndate and a.setl_id < b.setl_id))
where a.is_inpatient
    and b.is_inpatient
group by b.setl_id, b.psn_no, b.period, b.mdtrtarea_admvs
{%- endmacro %}

{#- More than `threshold` general outpatient visits in the trailing window. -#}
{% macro rule_high_frequency_visits(rule) -%}
select
    {{ rule_settlement_columns('v') }},
    max(v.fund_pay_sumamt) as suspect_amt,
    cast(count(*) as {{ dbt.type_string() }}) || ' general outpatient visits in the '
        || '{{ rule["window_days"] }} days to ' || cast(max(v.enddate) as {{ dbt.type_string() }}) as evidence
from {{ rule_input(rule, 'int_rule_settlements') }} as v
inner join {{ rule_input(rule, 'int_rule_settlements') }} as w
    on w.person_key = v.person_key
    and w.med_type = '11'
    and w.enddate <= v.enddate
    and {{ dbt.datediff('w.enddate', 'v.enddate', 'day') }} < {{ rule["window_days"] }}
where v.med_type = '11'
group by v.setl_id, v.psn_no, v.period, v.mdtrtarea_admvs
having count(*) > {{ rule["threshold"] }}
{%- endmacro %}

{#- Services after the institution's agreement ended, or while its entry was not valid. -#}
{% macro rule_after_agreement_end(rule) -%}
select
    {{ rule_settlement_columns('s') }},
    s.fund_pay_sumamt as suspect_amt,
    'served ' || cast(s.enddate as {{ dbt.type_string() }}) || ' at ' || s.fixmedins_code
        || ', agreement ended ' || coalesce(cast(i.agmt_enddate as {{ dbt.type_string() }}), 'n/a')
        || ', vali_flag ' || coalesce(i.vali_flag, 'null') as evidence
from {{ rule_input(rule, 'int_rule_settlements') }} as s
inner join {{ ref('dim_institutions') }} as i
    on i.fixmedins_code = s.fixmedins_code
    and i.valid_from <= s.period
    and (i.valid_to is null or i.valid_to > s.period)
where s.enddate > i.agmt_enddate
    or (i.agmt_enddate is null and coalesce(i.vali_flag, '0') <> '1')
{%- endmacro %}

{#- An inpatient stay with fee lines but none for a bed or nursing. -#}
{% macro rule_no_bed_or_nursing(rule) -%}
select
    {{ rule_settlement_columns('s') }},
    s.fund_pay_sumamt as suspect_amt,
    cast(f.lines as {{ dbt.type_string() }}) || ' fee lines, none for a bed or nursing' as evidence
from {{ rule_input(rule, 'int_rule_settlements') }} as s
inner join (
    select
        setl_id,
        count(*) as lines,
        sum(case when item_flag in ('bed', 'nursing') then 1 else 0 end) as bed_or_nursing_lines
    from {{ rule_input(rule, 'int_rule_fee_lines') }}
    group by setl_id
) as f
    on f.setl_id = s.setl_id
where s.is_inpatient
    and f.bed_or_nursing_lines = 0
{%- endmacro %}

{#- A basic-scheme enrollment in force while the person holds an earlier one: the
    enrollment (not a settlement) is the hit, in the first month it was duplicate;
    the funds paid on its settlements in its duplicate months are suspect. The one
    template that also selects person_key (an enrollment hit has no settlement). -#}
{% macro rule_duplicate_enrollment(rule) -%}
select
    cast(null as {{ dbt.type_string() }}) as setl_id,
    d.psn_no,
    min(d.period) as period,
    min(d.insuplc_admdvs) as admdvs,
    coalesce(sum(paid.fund_pay_sumamt), 0) as suspect_amt,
    'enrollment ' || d.psn_no || ' duplicates an earlier one in '
        || cast(count(distinct d.period) as {{ dbt.type_string() }}) || ' month(s)' as evidence,
    -- The person the hit is kept under (int_rule_hits rebuilds enrollment hits by person).
    min(d.person_key) as person_key
from (
    select
        period,
        psn_no,
        enrollments.person_key,
        insuplc_admdvs,
        row_number() over (
            partition by period, person_key, scheme_group
            order by psn_insu_date nulls last, valid_from, psn_no
        ) as seniority
    from {{ rule_input(rule, 'int_enrollments_at_month_end') }} as enrollments
    -- Only a person holding two basic enrollments at a month end can hold a junior one:
    -- there the month ends rank the person's enrollments (enrollment_rank > 1). Ranking
    -- every month end took 15 of the rule base's 21 s at `medium`.
    inner join (
        select distinct
            period as dup_period,
            person_key as dup_person_key
        from {{ rule_input(rule, 'int_enrollments_at_month_end') }}
        where scheme_group = 'basic'
            and enrollment_rank > 1
    ) as twice
        on twice.dup_period = enrollments.period
        and twice.dup_person_key = enrollments.person_key
    -- The month ends hold only persons with more than one version in a scheme group
    -- (the others hold one enrollment of it: int_coverage_at_month_end counts them).
    where enrollments.scheme_group = 'basic'
) as d
left join (
    select
        psn_no,
        period,
        sum(fund_pay_sumamt) as fund_pay_sumamt
    from {{ rule_input(rule, 'int_rule_settlements') }}
    group by psn_no, period
) as paid
    on paid.psn_no = d.psn_no
    and paid.period = d.period
where d.seniority > 1
group by d.psn_no
{%- endmacro %}
