{#- Periodic snapshots → validity intervals (SCD2): a new version of `key` starts in
    each period whose `attributes` differ from the previous period's; `valid_to` is the
    first period of the next version (null while current). Portable SQL: window
    functions only. -#}
{% macro scd2_from_snapshots(relation, key, attributes) -%}
with snapshots as (
    select * from {{ relation }}
),

compared as (
    select
        *,
        lag({{ dbt.concat(attributes_as_text(attributes)) }}) over (
            partition by {{ key }} order by period
        ) as previous_state,
        {{ dbt.concat(attributes_as_text(attributes)) }} as state
    from snapshots
),

changes as (
    select * from compared
    where previous_state is null or previous_state <> state
),

versions as (
    select
        {{ key }},
        {%- for a in attributes %}
        {{ a }},
        {%- endfor %}
        period as valid_from,
        lead(period) over (partition by {{ key }} order by period) as valid_to
    from changes
),

last_seen as (
    select {{ key }}, max(period) as last_seen_period
    from snapshots
    group by {{ key }}
)

select
    versions.*,
    versions.valid_to is null as is_current,
    last_seen.last_seen_period
from versions
inner join last_seen
    on last_seen.{{ key }} = versions.{{ key }}
{%- endmacro %}

{% macro attributes_as_text(attributes) -%}
    {%- set parts = [] -%}
    {%- for a in attributes -%}
        {%- do parts.append("coalesce(cast(" ~ a ~ " as " ~ dbt.type_string() ~ "), '~')") -%}
        {%- if not loop.last %}{%- do parts.append("'|'") -%}{%- endif -%}
    {%- endfor -%}
    {{ return(parts) }}
{%- endmacro %}
