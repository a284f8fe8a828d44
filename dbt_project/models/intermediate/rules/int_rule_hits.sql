{#- The rule base's hits, kept by what they depend on, so that a build redoes only the
    hits its new inputs can change: marts.rule_hits publishes them.

    Every hit carries a scope key (macro rule_scope): 's|<setl_id>' for a rule judging
    a settlement on its own (with its fee lines, codes and the reference data),
    'p|<person_key>' for a rule comparing a person's settlements within a window
    (repeat imaging, split or overlapping stays, frequent visits), 'e|<person_key>' for
    duplicate enrollment. An incremental build takes
      - settlements: those the netting rebuilt since (new, reversed, delivered again),
        those whose fee lines came in batches loaded since, and those billed by an
        institution or attended by a practitioner whose register history changed, in
        the months from which it changed (macro rule_register_changed);
      - persons: the persons of settlements the netting rebuilt or re-lined (and the
        person a rebuilt settlement was held under before);
      - enrollment persons: those holding two basic enrollments in a month end rebuilt
        since, and those with a duplicate-enrollment hit whose enrollments or
        settlements changed (or who left the history);
    recomputes each rule over its scope only, and yields one tombstone per scope key
    holding hits, so that the strategy (tombstone_delete_insert) drops every hit held
    under the key (also those that no longer fire) and writes no tombstone; the
    post-hook saves what the build took in (macros/rules/rule_state.sql).
    A changed seed (rule base, limits, code ranges, catalogue) rebuilds every hit.

    At `medium` the rule base in full took 16 s a build; a month added rebuilds about
    half the persons and a third of the settlements, a build with nothing new none. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='tombstone_delete_insert',
    unique_key='_scope_key',
    on_schema_change='append_new_columns',
    post_hook="{{ rule_state_save() }}"
) }}
-- The rules and their state are read at run time, so dbt cannot see these while parsing:
-- depends_on: {{ ref('rule_base') }}
-- depends_on: {{ ref('int_rule_settlements') }}
-- depends_on: {{ ref('int_rule_fee_lines') }}
-- depends_on: {{ ref('int_enrollments_at_month_end') }}
-- depends_on: {{ ref('int_enrollment_history') }}
-- depends_on: {{ ref('int_settlements_netted') }}
-- depends_on: {{ ref('stg_platform__fee_list_deliveries') }}
-- depends_on: {{ ref('dim_practitioners') }}
-- depends_on: {{ ref('dim_institutions') }}
-- depends_on: {{ ref('los_limits') }}
-- depends_on: {{ ref('dim_code_ranges') }}
-- depends_on: {{ ref('dim_catalogue') }}
{%- set rules = rule_base() %}
{%- set plan = rule_hits_plan() %}
{#- What each kind of rule reads in an incremental build: its scope's part of the inputs.
    The month ends go to the duplicate-enrollment rule as a subquery, not a CTE: the rule
    reads them twice, and DuckDB would copy every month end of the scope's persons first
    (3.3 s at `medium`). -#}
{%- set scoped = {
    's': {'int_rule_settlements': 'scope_settlements', 'int_rule_fee_lines': 'scope_fee_lines',
          'code_restrictions': 'scope_code_restrictions'},
    'p': {'int_rule_settlements': 'person_settlements', 'int_rule_fee_lines': 'person_imaging_lines'},
    'e': {'int_enrollments_at_month_end': '(select * from ' ~ ref('int_enrollments_at_month_end')
                                          ~ ' where person_key in (select person_key from enrollment_scope))',
          'int_rule_settlements': 'enrollment_settlements'},
} if plan['incremental'] else {'s': {'code_restrictions': 'code_restrictions'}} %}
{%- if plan['exists'] and not plan['keyed'] %}
    {{ exceptions.raise_compiler_error(this ~ " predates scope keys: build it with --full-refresh") }}
{%- endif %}
with rules as (
    select * from {{ ref('rule_base') }}
),

{#- The settlements are read where needed, never through one CTE: DuckDB materialises a
    CTE read more than once (all 5.5 million wide settlements at `medium`, 3 s). #}
{% if plan['incremental'] %}
{%- set built_at = rule_mark(plan, 'built_at') %}
register_changed as (
    {{ rule_register_changed(plan['state']) }}
),

rebuilt as (
    select setl_id, person_key from {{ ref('int_settlements_netted') }}
    where _built_at > {{ built_at }}
),

relined as (
    select distinct setl_id from {{ ref('stg_platform__fee_list_deliveries') }}
    where batch_processed_at > {{ rule_mark(plan, 'lines_loaded_at') }}
),

setl_scope as (
    select setl_id from rebuilt
    union
    select setl_id from relined
    union
    -- Settlements of a code whose register changed, in the months the change reaches
    -- (the rules match a settlement's period to the version in force): a snapshot
    -- closing 357 institutions' versions at `medium` took in 453,000 settlements of
    -- every month when read by code alone.
    {%- for kind, code in [('institution', 'fixmedins_code'), ('practitioner', 'atddr_no')] %}
    select settlements.setl_id
    from {{ ref('int_rule_settlements') }} as settlements
    inner join register_changed as changed
        on changed.kind = '{{ kind }}'
        and changed.key = settlements.{{ code }}
        and settlements.period >= changed.changed_from
    {% if not loop.last %}union{% endif %}
    {%- endfor %}
),

person_scope as (
    select person_key from rebuilt
    union
    select person_key from {{ ref('int_rule_settlements') }}
    where setl_id in (select setl_id from relined)
    union
    -- The person a rebuilt settlement's windowed hits were kept under (a corrected
    -- batch may have moved it to another person).
    select cast(substr(_scope_key, 3) as {{ type_person_key() }}) from {{ this }}
    where _scope_key like 'p|%'
        and setl_id in (select setl_id from setl_scope)
),

enrollment_scope as (
    select person_key from {{ ref('int_enrollments_at_month_end') }}
    where _source_loaded_at > {{ rule_mark(plan, 'month_ends_loaded_at') }}
        and scheme_group = 'basic'
        and enrollment_rank > 1
    union
    select held.person_key
    from (
        select distinct cast(substr(_scope_key, 3) as {{ type_person_key() }}) as person_key
        from {{ this }}
        where _scope_key like 'e|%'
    ) as held
    where held.person_key in (
            select person_key from {{ ref('int_enrollment_history') }}
            where _built_at > {{ built_at }}
        )
        or held.person_key in (select person_key from person_scope)
        or not exists (
            select 1 from {{ ref('int_enrollment_history') }} as history
            where history.person_key = held.person_key
        )
),

{#- The scope's inputs are read by many rules, so DuckDB materialises each once: only
    the columns rules read, not the models' bookkeeping (`_batch_path` is a path per
    fee line), which took int_rule_hits from 5.3-5.5 s to 4.9 s when a month was added
    at `medium`. -#}
scope_settlements as (
    select {{ rule_input_columns(ref('int_rule_settlements')) }}
    from {{ ref('int_rule_settlements') }}
    where setl_id in (select setl_id from setl_scope)
),

scope_fee_lines as (
    select {{ rule_input_columns(ref('int_rule_fee_lines')) }}
    from {{ ref('int_rule_fee_lines') }}
    where setl_id in (select setl_id from setl_scope)
),

scope_code_restrictions as (
    {{ rule_code_restrictions('scope_settlements') }}
),

person_settlements as (
    select {{ rule_input_columns(ref('int_rule_settlements')) }}
    from {{ ref('int_rule_settlements') }}
    where person_key in (select person_key from person_scope)
),

-- The one fee-line rule among the windowed ones reads imaging lines only: the person
-- scope's other lines are half of all.
person_imaging_lines as (
    select {{ rule_input_columns(ref('int_rule_fee_lines')) }}
    from {{ ref('int_rule_fee_lines') }}
    where item_flag like 'imaging%'
        and setl_id in (select setl_id from person_settlements)
),

enrollment_settlements as (
    select {{ rule_input_columns(ref('int_rule_settlements')) }}
    from {{ ref('int_rule_settlements') }}
    where person_key in (select person_key from enrollment_scope)
),

-- Only keys holding hits need a tombstone (a key with none has nothing to drop): a
-- tombstone per key in scope wrote and deleted 3.5 million rows at `medium`. The held
-- keys are read back into settlement ids and person keys (a few hundred thousand), not
-- the scope written out as keys: formatting 1.4 million person keys as text and hashing
-- them took 0.9 s of CPU when a month was added at `medium`.
tombstones as (
    select _scope_key from {{ this }}
    where (_scope_key like 's|%'
            and substr(_scope_key, 3) in (select setl_id from setl_scope))
        -- The text is cast only where it is a person's (a settlement id is not a number):
        -- a filter's terms may be evaluated in any order.
        or cast(case when _scope_key like 'p|%' then substr(_scope_key, 3) end
            as {{ type_person_key() }}) in (select person_key from person_scope)
        or cast(case when _scope_key like 'e|%' then substr(_scope_key, 3) end
            as {{ type_person_key() }}) in (select person_key from enrollment_scope)
    group by _scope_key
),
{% else %}
code_restrictions as (
    {{ rule_code_restrictions(ref('int_rule_settlements')) }}
),
{% endif %}
{% if plan['exists'] and not plan['incremental'] %}
-- A full rebuild of a table that holds hits (a seed changed, or its state is gone):
-- every key held is dropped.
tombstones as (
    select distinct _scope_key from {{ this }}
),
{% endif %}

fired as (
    {%- for rule in rules %}
    {%- set kind = rule_scope(rule) %}
    {%- do rule.update({'_inputs': scoped.get(kind, {})}) %}
    select
        '{{ rule["rule_id"] }}' as rule_id,
        '{{ kind }}' as scope_kind,
        setl_id,
        psn_no,
        {% if kind == 'e' %}person_key{% else %}cast(null as {{ type_person_key() }}){% endif %} as person_key,
        period,
        admdvs,
        cast(round(suspect_amt, 2) as decimal(18, 2)) as suspect_amt,
        evidence
    from (
        {{ compile_rule(rule) }}
    ) as rule_{{ rule["rule_id"] | lower }}
    {% if not loop.last %}union all{% endif %}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as rule_id,
        cast(null as {{ dbt.type_string() }}) as scope_kind,
        cast(null as {{ dbt.type_string() }}) as setl_id,
        cast(null as {{ dbt.type_string() }}) as psn_no,
        cast(null as {{ type_person_key() }}) as person_key,
        cast(null as date) as period,
        cast(null as {{ dbt.type_string() }}) as admdvs,
        cast(null as decimal(18, 2)) as suspect_amt,
        cast(null as {{ dbt.type_string() }}) as evidence
    where 1 = 0
    {%- endfor %}
),

{#- Each hit takes its settlement's columns from what its rule read: in an incremental
    build the scope's settlements (joined with all of them, the few hits made DuckDB
    hash all 5.5 million settlements at `medium`, 4 s with nothing new), in a full
    build every settlement. An enrollment hit has none. -#}
{%- if plan['incremental'] %}
{%- set joins = [('s', 'scope_settlements'), ('p', 'person_settlements'),
                 ('e', '(select * from ' ~ ref('int_rule_settlements') ~ ' where 1 = 0)')] %}
{%- else %}
{%- set joins = [(none, ref('int_rule_settlements'))] %}
{%- endif %}
hits as (
    {%- for kind, settlements in joins %}
    select
        fired.rule_id,
        rules.version as rule_version,
        rules.category,
        rules.severity,
        fired.setl_id,
        fired.psn_no,
        fired.period,
        fired.admdvs,
        settlements.insuplc_admdvs,
        settlements.fixmedins_code,
        settlements.atddr_no,
        settlements.med_type,
        settlements.insutype,
        settlements.fund_pay_sumamt,
        -- What a breach can cost the fund is at most what the fund paid on the settlement.
        case
            when settlements.setl_id is null then fired.suspect_amt
            else greatest(least(fired.suspect_amt, settlements.fund_pay_sumamt), 0)
        end as suspect_amt,
        fired.evidence,
        fired.scope_kind || '|' || case
            when fired.scope_kind = 's' then fired.setl_id
            else cast(coalesce(fired.person_key, settlements.person_key) as {{ dbt.type_string() }})
        end as _scope_key
    from fired
    inner join rules
        on rules.rule_id = fired.rule_id
    left join {{ settlements }} as settlements
        on settlements.setl_id = fired.setl_id
    {%- if kind is not none %}
    where fired.scope_kind = '{{ kind }}'
    {%- endif %}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

final as (
    select
        hits.*,
        false as _is_tombstone,
        {{ run_timestamp() }} as _built_at
    from hits
    {%- if plan['exists'] %}
    union all
    -- One row per key rebuilt, every other column null (typed by the join).
    select
        {%- for column in rule_hit_columns() %}
        nothing.{{ column }},
        {%- endfor %}
        tombstones._scope_key,
        true as _is_tombstone,
        {{ run_timestamp() }} as _built_at
    from tombstones
    left join hits as nothing
        on 1 = 0
    {%- endif %}
)

select * from final
