{#- What int_rule_hits remembers between builds, in a table of its own beside it
    (<int_rule_hits>__state, written by its post-hook in the build's transaction):
    a fingerprint of each reference relation the rules read, per key where the rules
    read it per key, and the marks of the inputs it took in.

    kind 'seed': a whole relation (rule base, length-of-stay limits, code ranges,
    catalogue): a change rebuilds every hit. kind 'institution' / 'practitioner': one
    row per register version of a code (what the rules read of it, with its validity):
    a change rebuilds the settlements billed by that institution or attended by that
    practitioner in the months from which the version in force differs (a monthly
    snapshot changes a few codes, and from that month on only). kind 'mark':
    watermarks (text). Seeds and marks leave valid_from / valid_to empty. -#}

{% macro rule_reference_seeds() -%}
    {{ return(['rule_base', 'los_limits', 'dim_code_ranges', 'dim_catalogue']) }}
{%- endmacro %}

{#- A text fingerprint of the rows of a seed, portable SQL. -#}
{% macro _rule_fingerprint(name, attributes) -%}
    {%- set row_text = dbt.concat(attributes_as_text(attributes)) -%}
    select
        'seed' as kind,
        '{{ name }}' as key,
        {{ dbt.hash(dbt.listagg(row_text, "'~'", "order by " ~ row_text)) }} as fingerprint,
        cast(null as date) as valid_from,
        cast(null as date) as valid_to
    from {{ ref(name) }}
{%- endmacro %}

{#- The register versions of each code: what the rules read of a version, as text, and
    the months it is in force (valid_from to valid_to; the rules match a settlement's
    period within them). -#}
{% macro _rule_register_versions(kind, key, relation, attributes) -%}
    select
        '{{ kind }}' as kind,
        {{ key }} as key,
        {{ dbt.concat(attributes_as_text(attributes)) }} as fingerprint,
        coalesce(valid_from, cast('1900-01-01' as date)) as valid_from,
        valid_to
    from {{ relation }}
    where {{ key }} is not null
{%- endmacro %}

{#- The rules' reference rows now (kind, key, fingerprint, valid_from, valid_to); `kinds`
    limits which. Only at execution (it reads the seeds' columns). -#}
{% macro rule_reference_rows(kinds=('seed', 'institution', 'practitioner')) -%}
    {%- set parts = [] -%}
    {%- if 'seed' in kinds -%}
        {%- for name in rule_reference_seeds() -%}
            {%- set columns = adapter.get_columns_in_relation(ref(name)) | map(attribute='name') | list -%}
            {%- do parts.append(_rule_fingerprint(name, columns)) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if 'institution' in kinds -%}
        {%- do parts.append(_rule_register_versions('institution', 'fixmedins_code', ref('dim_institutions'),
            ['agmt_enddate', 'vali_flag'])) -%}
    {%- endif -%}
    {%- if 'practitioner' in kinds -%}
        {%- do parts.append(_rule_register_versions('practitioner', 'dr_code', ref('dim_practitioners'),
            ['fixmedins_code', 'vali_flag'])) -%}
    {%- endif -%}
    {{ return(parts | join('\nunion all\n')) }}
{%- endmacro %}

{#- The watermarks a build took in: when it ran, the fee-line batches and the month ends
    it saw (the next build redoes what came after). -#}
{% macro _rule_marks() -%}
    select 'mark' as kind, 'built_at' as key,
        cast({{ run_timestamp() }} as {{ dbt.type_string() }}) as fingerprint,
        cast(null as date) as valid_from, cast(null as date) as valid_to
    union all
    select 'mark', 'lines_loaded_at', cast(max(processed_at) as {{ dbt.type_string() }}), null, null
    from {{ source('ops', 'batches') }}
    where feed = 'fee_list'
    union all
    select 'mark', 'month_ends_loaded_at', cast(max(_source_loaded_at) as {{ dbt.type_string() }}), null, null
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

{#- The seeds whose fingerprint now differs from the one in `state`, or that are only in
    one of them. -#}
{% macro rule_seeds_changed(state) -%}
    select coalesce(now_.key, held.key) as key
    from ({{ rule_reference_rows(['seed']) }}) as now_
    full outer join (
        select * from {{ state }}
        where kind = 'seed'
    ) as held
        on held.key = now_.key
    where now_.key is null or held.key is null
        or coalesce(now_.fingerprint, '') <> coalesce(held.fingerprint, '')
{%- endmacro %}

{#- The register codes whose versions now differ from those in `state`, each with the
    first month from which the version in force may differ (kind, key, changed_from):
    a version only on one side from its valid_from; a version on both sides whose end
    moved from the earlier end (a snapshot closing a version and opening the next
    changes the months after, not before); a code new to the register or gone from it
    in every month (a rule asks whether the code is registered at all). One pass over
    both sides: every version of each appears in the full join at least once. -#}
{% macro rule_register_changed(state) -%}
    {%- set kinds = ['institution', 'practitioner'] -%}
    {%- set forever = "cast('9999-12-31' as date)" -%}
    select
        kind,
        key,
        case
            when count(now_key) = 0 or count(held_key) = 0 then cast('1900-01-01' as date)
            else min(changed_from)
        end as changed_from
    from (
        select
            coalesce(now_.kind, held.kind) as kind,
            coalesce(now_.key, held.key) as key,
            now_.key as now_key,
            held.key as held_key,
            case
                when held.key is null then now_.valid_from
                when now_.key is null then held.valid_from
                when coalesce(now_.valid_to, {{ forever }}) <> coalesce(held.valid_to, {{ forever }})
                    then least(coalesce(now_.valid_to, {{ forever }}), coalesce(held.valid_to, {{ forever }}))
            end as changed_from
        from ({{ rule_reference_rows(kinds) }}) as now_
        full outer join (
            select * from {{ state }}
            where kind in ('{{ kinds | join("', '") }}')
        ) as held
            on held.kind = now_.kind
            and held.key = now_.key
            and held.fingerprint = now_.fingerprint
            and held.valid_from = now_.valid_from
    ) as versions
    group by kind, key
    having count(now_key) = 0 or count(held_key) = 0 or min(changed_from) is not null
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
    {#- A state saved before register versions were kept (no validity columns) cannot say
        from when a code changed: every hit is rebuilt once. -#}
    {%- if 'valid_from' not in adapter.get_columns_in_relation(state) | map(attribute='name') | list -%}
        {{ return(plan) }}
    {%- endif -%}
    {%- set changed_seeds = "select count(*) from (" ~ rule_seeds_changed(state) ~ ") as changed" -%}
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
