{#- The columns `this` holds, lower case, when the build is incremental; else none. -#}
{% macro held_columns() -%}
    {%- if execute and is_incremental() -%}
        {{ return(adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list) }}
    {%- endif -%}
    {{ return([]) }}
{%- endmacro %}

{#- The high-water mark of an incremental model: the largest `column` it holds, or the
    beginning of time when the model is new or predates the column (then the build
    covers everything). Read before the build and written into the SQL as a literal:
    as a scalar subquery it kept DuckDB from pushing the filter down (at `medium`,
    int_settlements_netted's incremental select took 39 s instead of 4). -#}
{% macro incremental_watermark(column) -%}
    {%- set mark = none -%}
    {%- if column | lower in held_columns() -%}
        {%- set mark = run_query('select max(' ~ column ~ ') from ' ~ this).columns[0].values()[0] -%}
    {%- endif -%}
    {%- if mark is none -%}
        cast('1900-01-01' as timestamp)
    {%- else -%}
        cast('{{ mark.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
    {%- endif -%}
{%- endmacro %}

{#- is_incremental(), and `this` already has every one of `columns`: a model whose
    incremental SQL reads columns an older version of it lacked builds in full once
    (then `append_new_columns` adds them and the next build is incremental). -#}
{% macro is_incremental_with(columns) -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set held = held_columns() -%}
    {%- for column in columns -%}
        {%- if column | lower not in held -%}
            {{ return(false) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(true) }}
{%- endmacro %}

{#- When this dbt invocation started, as a timestamp: the mark of rows built by it. -#}
{% macro run_timestamp() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}

{#- The months `upstream` rebuilt since this incremental model last ran: the periods of
    its rows built after the upstream build this model last took in. -#}
{% macro rebuilt_months(upstream) -%}
    (
        select period from {{ upstream }}
        where _built_at > {{ incremental_watermark('_source_built_at') }}
    )
{%- endmacro %}
