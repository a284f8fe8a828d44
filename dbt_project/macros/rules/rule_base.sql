{#- The rule base (seeds/rules/rule_base.csv) as a list of dicts, read when the model
    runs; empty while dbt parses (then the model compiles to an empty, typed select). -#}
{% macro rule_base() -%}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set result = run_query("select * from " ~ ref('rule_base') ~ " order by rule_id") -%}
    {%- set rules = [] -%}
    {%- for row in result.rows -%}
        {%- set rule = {} -%}
        {%- for name in result.column_names -%}
            {%- do rule.update({name: row[name]}) -%}
        {%- endfor -%}
        {%- do rules.append(rule) -%}
    {%- endfor -%}
    {{ return(rules) }}
{%- endmacro %}

{#- One rule compiled to SQL: the template's macro (rule_<template>) called with the
    rule's parameters. Every template selects setl_id, psn_no, period, admdvs,
    suspect_amt and evidence. -#}
{% macro compile_rule(rule) -%}
    {%- set template = context.get('rule_' ~ rule['template']) -%}
    {%- if template is none -%}
        {{ exceptions.raise_compiler_error("rule " ~ rule['rule_id'] ~ ": no macro rule_" ~ rule['template'] ~ " for its template") }}
    {%- endif -%}
    {{ return(template(rule)) }}
{%- endmacro %}

{#- Columns every settlement rule takes from the settlement it fires on. -#}
{% macro rule_settlement_columns(alias) -%}
    {{ alias }}.setl_id,
    {{ alias }}.psn_no,
    {{ alias }}.period,
    {{ alias }}.mdtrtarea_admvs as admdvs
{%- endmacro %}
