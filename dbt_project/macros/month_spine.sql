{#- One row per month (first day) from start to end inclusive; dispatched so another
    engine can bring its own. -#}
{% macro month_spine(start_expr, end_expr) -%}
    {{ return(adapter.dispatch('month_spine', 'yibao')(start_expr, end_expr)) }}
{%- endmacro %}

{#- Any engine: month offsets 0-999 from a cross join of digits (83 years is enough). -#}
{% macro default__month_spine(start_expr, end_expr) -%}
    select period from (
        select cast({{ dbt.dateadd('month', 'offsets.n', 'cast(' ~ start_expr ~ ' as date)') }} as date) as period
        from (
            select units.d + 10 * tens.d + 100 * hundreds.d as n
            from (select 0 as d union all select 1 union all select 2 union all select 3
                  union all select 4 union all select 5 union all select 6 union all select 7
                  union all select 8 union all select 9) as units
            cross join (select 0 as d union all select 1 union all select 2 union all select 3
                  union all select 4 union all select 5 union all select 6 union all select 7
                  union all select 8 union all select 9) as tens
            cross join (select 0 as d union all select 1 union all select 2 union all select 3
                  union all select 4 union all select 5 union all select 6 union all select 7
                  union all select 8 union all select 9) as hundreds
        ) as offsets
    ) as months
    where period <= cast({{ end_expr }} as date)
{%- endmacro %}

{#- DuckDB: its own series generator. -#}
{% macro duckdb__month_spine(start_expr, end_expr) -%}
    select cast(unnest(generate_series(
        cast({{ start_expr }} as timestamp),
        cast({{ end_expr }} as timestamp),
        interval 1 month
    )) as date) as period
{%- endmacro %}

{#- Spark: sequence() over dates, exploded. -#}
{% macro spark__month_spine(start_expr, end_expr) -%}
    select explode(sequence(
        cast({{ start_expr }} as date),
        cast({{ end_expr }} as date),
        interval 1 month
    )) as period
{%- endmacro %}
