{#- Data tests of the largest incremental tables check the rows built since the last
    build that ran and passed every model, seed and data test (a "checked build"): rows
    built before were checked then and have not changed since. A build that fails a test
    records nothing, so the next build checks its rows again; a full refresh rebuilds,
    hence checks, everything. A not-null test reads the rows built since; a uniqueness
    test every row sharing a key with a row built since (a faulty build could leave an
    old row beside a new one).

    A test opts in with a `where` such as `_built_at > __last_checked_build__`; the
    placeholder is replaced at run time (dbt documents this pattern for `where`), and
    `__relation__` with the relation tested. -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- if '__last_checked_build__' in where -%}
            {%- set where = where | replace('__last_checked_build__', last_checked_build()) -%}
        {%- endif -%}
        {%- set where = where | replace('__relation__', relation) -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#- When the last checked build started, as a SQL timestamp (1900 before any). -#}
{% macro last_checked_build() -%}
    {%- set mark = none -%}
    {%- if execute -%}
        {%- set log_relation = adapter.get_relation(
            database=target.database, schema='audit', identifier='checked_builds') -%}
        {%- if log_relation is not none -%}
            {%- set mark = run_query('select max(run_started_at) from ' ~ log_relation).columns[0].values()[0] -%}
        {%- endif -%}
    {%- endif -%}
    {{- timestamp_literal(mark) -}}
{%- endmacro %}

{#- on-run-end: record this build as checked when every model, seed, snapshot and data
    test of the project ran and passed (a partial selection checks only part). -#}
{% macro record_checked_build(results) -%}
    {%- if execute -%}
        {%- set kinds = ['model', 'seed', 'snapshot', 'test'] -%}
        {%- set expected = graph.nodes.values() | selectattr('resource_type', 'in', kinds) | list | length -%}
        {%- set passed = [] -%}
        {%- for result in results -%}
            {%- if result.node.resource_type in kinds and result.status in ['success', 'pass', 'warn'] -%}
                {%- do passed.append(result.node.unique_id) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if passed | length == expected -%}
            {%- do run_query('create schema if not exists audit') -%}
            {%- do run_query('create table if not exists audit.checked_builds '
                             '(run_started_at timestamp, invocation_id varchar, nodes integer)') -%}
            {%- do run_query('insert into audit.checked_builds values (' ~ run_timestamp() ~ ", '"
                             ~ invocation_id ~ "', " ~ expected ~ ')') -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
