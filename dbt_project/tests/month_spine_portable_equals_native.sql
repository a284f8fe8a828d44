{#- The portable month spine (any engine) gives exactly the months DuckDB's native one
    gives: the fallback a new engine would use is checked here, on every build. -#}
{%- set start = "cast('2023-11-01' as date)" -%}
{%- set stop = "cast('2025-02-01' as date)" -%}
with portable as (
    {{ default__month_spine(start, stop) }}
),

native as (
    {{ duckdb__month_spine(start, stop) }}
),

differences as (
    (select period from portable except select period from native)
    union all
    (select period from native except select period from portable)
)

select * from differences
