{#- Hooks for a model whose query reads the same view from two places. DuckDB 2.0's
    common-subplan optimiser then computes the view once and materialises it: for
    int_settlements_netted, a copy of every wide settlement row (6 GB written to disk at
    `medium`, 19 s against 11 without). Off for that model only: elsewhere the shared
    subplans pay. Other engines: nothing to do. -#}
{% macro without_common_subplans() -%}
    {{ return(adapter.dispatch('without_common_subplans', 'yibao')()) }}
{%- endmacro %}

{% macro default__without_common_subplans() -%}
{%- endmacro %}

{% macro duckdb__without_common_subplans() -%}
    set disabled_optimizers = 'common_subplan'
{%- endmacro %}

{% macro with_common_subplans() -%}
    {{ return(adapter.dispatch('with_common_subplans', 'yibao')()) }}
{%- endmacro %}

{% macro default__with_common_subplans() -%}
{%- endmacro %}

{% macro duckdb__with_common_subplans() -%}
    reset disabled_optimizers
{%- endmacro %}
