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
    {{- timestamp_literal(mark) -}}
{%- endmacro %}

{#- A datetime as a SQL timestamp literal; none as the beginning of time (1900). -#}
{% macro timestamp_literal(value) -%}
    {%- if value is none -%}
        cast('1900-01-01' as timestamp)
    {%- else -%}
        cast('{{ value.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
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
    {{- timestamp_literal(run_started_at) -}}
{%- endmacro %}

{#- The months `upstream` rebuilt since this incremental model last ran: the periods of
    its rows built after the upstream build this model last took in. -#}
{% macro rebuilt_months(upstream) -%}
    (
        select period from {{ upstream }}
        where _built_at > {{ incremental_watermark('_source_built_at') }}
    )
{%- endmacro %}

{#- Incremental strategy 'tombstone_delete_insert': dbt's delete+insert, except that rows
    flagged _is_tombstone only delete (the rows held under their key) and are never
    inserted. A model marks with a tombstone a key whose rows must go even when it
    builds none for it (a settlement reversed in full, a person whose hits no longer
    fire). Inserting tombstones and deleting them in a post-hook made DuckDB rewrite the
    transaction's freshly appended rows at commit: 5 s for int_rule_fee_lines when a
    month was added at `medium`, against 0.1 s without. -#}
{% macro get_incremental_tombstone_delete_insert_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set key = arg_dict['unique_key'] -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }}
    where {{ key }} in (select {{ key }} from {{ source }});

    insert into {{ target }} ({{ columns }})
    select {{ columns }}
    from {{ source }}
    where not _is_tombstone
{%- endmacro %}

{#- The batches of `feed` the ledger (ops.batches) records as loaded after `since` (a SQL
    timestamp), as a subquery of `column` (their path or their period). Models find
    there what a batch sent again took away: a removed record leaves no row to be
    found by, and an emptied batch none at all. -#}
{% macro ledger_batches_since(feed, since, column='path') -%}
    (select {{ column }} from {{ source('ops', 'batches') }}
     where feed = '{{ feed }}' and processed_at > {{ since }})
{%- endmacro %}

{#- When the ledger's latest batch of `feed` was loaded, as a scalar subquery: the mark
    of a model that takes batches in from the ledger (the rows it reads carry their
    batch's time from there too, so none is later). -#}
{% macro ledger_latest_batch(feed) -%}
    (select max(processed_at) from {{ source('ops', 'batches') }} where feed = '{{ feed }}')
{%- endmacro %}

{#- Incremental strategy 'direct_delete_insert': the rows go from the model's query
    straight into the table, then the rows they replace are deleted. dbt's own
    strategies first copy every new row into a temporary table, then copy them again
    into the table: at `medium` that temporary copy took 1.2-1.8 s each of
    int_settlements_netted and int_rule_fee_lines when a month was added. Here the
    "temporary relation" is a view of the query (duckdb__create_table_as below), which
    the insert reads once.

    A model using it carries _built_at, the run's timestamp, on every row it builds.
    The older rows then deleted are those under a key the run rebuilt: under a
    tombstone's key when the model has tombstones (_is_tombstone; such a model writes
    one for every key it rebuilds, with rows or without), else under a key of the rows
    just written. Tombstones are never written, and the rows just written never deleted
    (deleting rows appended in the same transaction made DuckDB rewrite them at commit).
    The delete comes last because the query may read the table itself (the rows it
    holds for the keys it redoes): read after the insert, it still finds every key it
    found before. A tombstone's keys are copied into a temporary table before the
    insert: read from the view in the delete, they were counted by DuckDB's estimate
    (10 million), so it hashed the 15 million rows held instead of the 1.7 million
    keys, 1.2 s of int_rule_fee_lines's delete when a month was added at `medium`,
    against 0.5 s with the copy. -#}
{% macro get_incremental_direct_delete_insert_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set key = arg_dict['unique_key'] -%}
    {%- set names = arg_dict['dest_columns'] | map(attribute='name') | map('lower') | list -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set tombstones = '_is_tombstone' in names -%}
    {%- if '_built_at' not in names -%}
        {{ exceptions.raise_compiler_error(
            "direct_delete_insert needs a _built_at column (the run's timestamp): " ~ target) }}
    {%- endif -%}
    {%- if tombstones %}
    {%- set keys = source.incorporate(path={'identifier': source.identifier ~ '__keys'})
        .include(database=false, schema=false) %}
    create or replace temporary table {{ keys }} as
    select {{ key }} from {{ source }} where _is_tombstone;
    {%- endif %}

    insert into {{ target }} ({{ columns }})
    select {{ columns }}
    from {{ source }}
    {%- if tombstones %}
    where not _is_tombstone
    {%- endif %};

    delete from {{ target }}
    where _built_at is distinct from {{ run_timestamp() }}
        and {{ key }} in (
            {%- if tombstones %}
            select {{ key }} from {{ keys }}
            {%- else %}
            select {{ key }} from {{ target }} where _built_at = {{ run_timestamp() }}
            {%- endif %}
        )
    {%- if tombstones %};

    drop table {{ keys }}
    {%- endif %}
{%- endmacro %}

{#- The temporary relation of an incremental build: for the strategy above a view of
    the model's query (nothing is computed until the strategy's insert reads it); for
    every other model, and every table that is not temporary, dbt-duckdb's own. -#}
{% macro duckdb__create_table_as(temporary, relation, compiled_code, language='sql', partitioned_by=none, sorted_by=none) -%}
    {%- if temporary and language == 'sql'
        and config.get('incremental_strategy') == 'direct_delete_insert' -%}
    create temporary view {{ relation.include(database=false, schema=false) }} as (
        {{ compiled_code }}
    )
    {%- else -%}
    {{ dbt.duckdb__create_table_as(temporary, relation, compiled_code, language, partitioned_by, sorted_by) }}
    {%- endif -%}
{%- endmacro %}
