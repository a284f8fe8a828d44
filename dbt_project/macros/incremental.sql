{#- The high-water mark of an incremental model: the largest `column` it holds, or the
    beginning of time when the model is new or predates the column (then the build
    covers everything). -#}
{% macro incremental_watermark(column) -%}
    {%- set columns = [] -%}
    {%- if execute and is_incremental() -%}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
    {%- endif -%}
    {%- if column | lower in columns -%}
        (select coalesce(max({{ column }}), cast('1900-01-01' as timestamp)) from {{ this }})
    {%- else -%}
        cast('1900-01-01' as timestamp)
    {%- endif -%}
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
