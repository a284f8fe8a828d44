{#- A hook for a model whose query reads the same view from two places. DuckDB 2.0's
    common-subplan optimiser then computes the view once and materialises it: for
    int_settlements_netted, a copy of every wide settlement row (6 GB written to disk at
    `medium`, 19 s against 11 without). Off for that model only (pre-hook
    common_subplans(false), post-hook common_subplans(true)): elsewhere the shared
    subplans pay. The setting is global in DuckDB (it cannot be set for one connection),
    so a model building beside the netting on dbt's other thread plans without it too:
    slower at worst, never different. Other engines: nothing to do. -#}
{% macro common_subplans(enabled) -%}
    {{ return(adapter.dispatch('common_subplans', 'yibao')(enabled)) }}
{%- endmacro %}

{% macro default__common_subplans(enabled) -%}
{%- endmacro %}

{% macro duckdb__common_subplans(enabled) -%}
    {%- if enabled -%}
    reset disabled_optimizers
    {%- else -%}
    set disabled_optimizers = 'common_subplan'
    {%- endif -%}
{%- endmacro %}

{#- The rows of `relation` that `condition` keeps, as a subquery. DuckDB reads every
    column of every row before it applies a filter such as `key in (subquery)`; here the
    rows are found on the condition's columns first and only those are read wide (by
    rowid). It pays where few rows are kept: the netting's withdrawn rows (none, most
    builds) read 3.8 million wide held rows at `medium` when a month was added, 0.4 s
    of the model. Where a third or more are kept (the rule inputs' scopes), the fetch
    by rowid cost more than the scan (measured): those keep the plain filter.
    Other engines: the plain filter. -#}
{% macro rows_where(relation, condition) -%}
    {{ return(adapter.dispatch('rows_where', 'yibao')(relation, condition)) }}
{%- endmacro %}

{% macro default__rows_where(relation, condition) -%}
    (select * from {{ relation }} where {{ condition }})
{%- endmacro %}

{% macro duckdb__rows_where(relation, condition) -%}
    (select * from {{ relation }}
     where rowid in (select rowid from {{ relation }} where {{ condition }}))
{%- endmacro %}
