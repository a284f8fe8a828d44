{#- What int_rule_hits remembers between builds, in a table of its own beside it
    (<int_rule_hits>__state, written by its post-hook in the build's transaction):
    a fingerprint of each reference relation the rules read, per key where the rules
    read it per key, and the marks of the inputs it took in.

    kind 'seed': a whole relation (rule base, length-of-stay limits, code ranges,
    catalogue): a change rebuilds every hit. kind 'institution' / 'practitioner': the
    register history of one code: a change rebuilds the settlements billed by that
    institution or attended by that practitioner (a monthly snapshot changes a few).
    kind 'mark': watermarks (text). -#}

{% macro rule_reference_seeds() -%}
    {{ return(['rule_base', 'los_limits', 'dim_code_ranges', 'dim_catalogue']) }}
{%- endmacro %}

{#- A text fingerprint of the rows `row_text` per `key` of `relation`, portable SQL. -#}
{% macro _rule_fingerprint(kind, key, relation, attributes) -%}
    {%- set row_text = dbt.concat(attributes_as_text(attributes)) -%}
    select
        '{{ kind }}' as kind,
        {{ key }} as key,
        {{ dbt.hash(dbt.listagg(row_text, "'~'", "order by " ~ row_text)) }} as fingerprint
    from {{ relation }}
    {%- if kind != 'seed' %}
    where {{ key }} is not null
    group by {{ key }}
    {%- endif %}
{%- endmacro %}

{#- (kind, key, fingerprint) of the reference data now; `kinds` limits which. Only at
    execution (it reads the seeds' columns). -#}
{% macro rule_reference_rows(kinds=('seed', 'institution', 'practitioner')) -%}
    {%- set parts = [] -%}
    {%- if 'seed' in kinds -%}
        {%- for name in rule_reference_seeds() -%}
            {%- set columns = adapter.get_columns_in_relation(ref(name)) | map(attribute='name') | list -%}
            {%- do parts.append(_rule_fingerprint('seed', "'" ~ name ~ "'", ref(name), columns)) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if 'institution' in kinds -%}
        {%- do parts.append(_rule_fingerprint('institution', 'fixmedins_code', ref('dim_institutions'),
            ['agmt_enddate', 'vali_flag', 'valid_from', 'valid_to'])) -%}
    {%- endif -%}
    {%- if 'practitioner' in kinds -%}
        {%- do parts.append(_rule_fingerprint('practitioner', 'dr_code', ref('dim_practitioners'),
            ['fixmedins_code', 'vali_flag', 'valid_from', 'valid_to'])) -%}
    {%- endif -%}
    {{ return(parts | join('\nunion all\n')) }}
{%- endmacro %}

{#- The watermarks a build took in: when it ran, the fee-line batches and the month ends
    it saw (the next build redoes what came after). -#}
{% macro _rule_marks() -%}
    select 'mark' as kind, 'built_at' as key,
        cast({{ run_timestamp() }} as {{ dbt.type_string() }}) as fingerprint
    union all
    select 'mark', 'lines_loaded_at', cast(max(processed_at) as {{ dbt.type_string() }})
    from {{ source('ops', 'batches') }}
    where feed = 'fee_list'
    union all
    select 'mark', 'month_ends_loaded_at', cast(max(_source_loaded_at) as {{ dbt.type_string() }})
    from {{ ref('int_enrollments_at_month_end') }}
{%- endmacro %}

{#- Where the state is kept: beside int_rule_hits, under its name and `__state`. -#}
{% macro rule_state_relation() -%}
    {{ return(api.Relation.create(database=this.database, schema=this.schema,
                                  identifier=this.identifier ~ '__state')) }}
{%- endmacro %}

{#- Post-hook of int_rule_hits: what it took in, for the next build to compare. -#}
{% macro rule_state_save() -%}
    {%- if execute -%}
    create or replace table {{ rule_state_relation() }} as
    {{ rule_reference_rows() }}
    union all
    {{ _rule_marks() }}
    {%- endif -%}
{%- endmacro %}

{#- The (kind, key) of `kinds` whose fingerprint now differs from the one in `state`,
    or that is only in one of them. -#}
{% macro rule_reference_changed(state, kinds) -%}
    select coalesce(now_.kind, held.kind) as kind, coalesce(now_.key, held.key) as key
    from ({{ rule_reference_rows(kinds) }}) as now_
    full outer join (
        select * from {{ state }}
        where kind in ('{{ kinds | join("', '") }}')
    ) as held
        on held.kind = now_.kind
        and held.key = now_.key
    where now_.key is null or held.key is null
        or coalesce(now_.fingerprint, '') <> coalesce(held.fingerprint, '')
{%- endmacro %}

{#- How int_rule_hits builds: {'incremental': true, 'state': relation, 'marks': {...}}
    when it holds hits of this design, its state is there and no seed changed since;
    else {'incremental': false, 'exists': whether it holds hits to replace, 'keyed':
    whether they carry scope keys}. -#}
{% macro rule_hits_plan() -%}
    {%- set plan = {'incremental': false, 'exists': false, 'keyed': false} -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(plan) }}
    {%- endif -%}
    {%- do plan.update({'exists': true,
                        'keyed': is_incremental_with(['_scope_key', '_is_tombstone'])}) -%}
    {%- set state = load_relation(rule_state_relation()) -%}
    {%- if state is none or not plan['keyed'] -%}
        {{ return(plan) }}
    {%- endif -%}
    {%- set changed_seeds = "select count(*) from (" ~ rule_reference_changed(state, ['seed']) ~ ") as changed" -%}
    {%- if run_query(changed_seeds).columns[0].values()[0] > 0 -%}
        {{ return(plan) }}
    {%- endif -%}
    {%- set marks = {} -%}
    {%- for row in run_query("select key, fingerprint from " ~ state ~ " where kind = 'mark'").rows -%}
        {%- do marks.update({row[0]: row[1]}) -%}
    {%- endfor -%}
    {%- do plan.update({'incremental': true, 'state': state, 'marks': marks}) -%}
    {{ return(plan) }}
{%- endmacro %}

{#- A mark as a timestamp literal (the beginning of time when it was never set): a
    literal, not a subquery, so that filters on it reach the scans. -#}
{% macro rule_mark(plan, name) -%}
    {%- set value = plan['marks'].get(name) -%}
    cast('{{ value if value else "1900-01-01 00:00:00" }}' as timestamp)
{%- endmacro %}

{#- The columns of a published hit (marts.rule_hits), in order; int_rule_hits adds its
    scope key and build marks. -#}
{% macro rule_hit_columns() -%}
    {{ return([
        'rule_id', 'rule_version', 'category', 'severity', 'setl_id', 'psn_no', 'period',
        'admdvs', 'insuplc_admdvs', 'fixmedins_code', 'atddr_no', 'med_type', 'insutype',
        'fund_pay_sumamt', 'suspect_amt', 'evidence']) }}
{%- endmacro %}
