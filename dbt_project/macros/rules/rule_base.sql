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

{#- What a rule reads for one of its inputs: the relation itself, or what the model
    compiling it put in rule['_inputs'] (int_rule_hits: the settlements in scope).
    'code_restrictions' is not a model: int_rule_hits always provides it. -#}
{% macro rule_input(rule, name) -%}
    {%- set inputs = rule.get('_inputs') or {} -%}
    {%- if name in inputs -%}
        {{ return(inputs[name]) }}
    {%- endif -%}
    {{ return(ref(name)) }}
{%- endmacro %}

{#- The columns of a rule input that rules may read: all but the bookkeeping ones, whose
    names start with an underscore (the rule templates never read them). A select of
    these keeps a copy of the input narrow where int_rule_hits materialises one. Every
    column while parsing, or should the relation not be there to ask. -#}
{% macro rule_input_columns(relation) -%}
    {%- set names = [] -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
        {%- if not column.name.startswith('_') -%}
            {%- do names.append(adapter.quote(column.name)) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(names | join(', ') if names else '*') }}
{%- endmacro %}

{#- What a rule's hits depend on, so what an incremental build must redo them for:
    's' the settlement alone (with reference data), 'p' the person's settlements within
    a window, 'e' the person's enrollments (int_rule_hits says how each is scoped). -#}
{% macro rule_scope(rule) -%}
    {%- if rule['template'] in ('repeat_imaging', 'split_hospitalisation', 'overlapping_stays',
                                'high_frequency_visits') -%}
        {{ return('p') }}
    {%- elif rule['template'] == 'duplicate_enrollment' -%}
        {{ return('e') }}
    {%- endif -%}
    {{ return('s') }}
{%- endmacro %}
