{#- One row per month (first day) from start to end inclusive; dispatched so another engine can bring its own. -#}
{% macro month_spine(start_expr, end_expr) -%}
    {{ return(adapter.dispatch('month_spine', 'yibao')(start_expr, end_expr)) }}
{%- endmacro %}

{% macro default__month_spine(start_expr, end_expr) -%}
    select cast(unnest(generate_series(
        cast({{ start_expr }} as timestamp),
        cast({{ end_expr }} as timestamp),
        interval 1 month
    )) as date) as period
{%- endmacro %}
