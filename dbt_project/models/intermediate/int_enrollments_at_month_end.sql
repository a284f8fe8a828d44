{#- Which enrollments are in force at the end of each month: the enrollment changes
    become validity intervals (SCD2), and each interval is matched to the month ends
    it covers, so a month costs only the intervals that span it.

    Incremental by month: a change valid from month M can only alter month ends from M
    on (it closes the version before it at M), so a build redoes the months from the
    earliest change among batches loaded since the last build, and from the month of
    any enrollment batch loaded since (read from the ledger: a batch sent again with
    records removed, or with none left, takes changes away and leaves none to be found
    from); none when nothing new. A table built before has_alternatives was carried is
    built again in full once. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='period',
    on_schema_change='append_new_columns'
) }}
{%- set first_month -%}
    {%- if is_incremental_with(['has_alternatives']) -%}
    {%- set loaded_since = incremental_watermark('_source_loaded_at') -%}
    (select min(first_month) from (
        select {{ dbt.date_trunc('month', 'min(valid_from)') }} as first_month
        from {{ ref('int_enrollment_history') }}
        where batch_processed_at > {{ loaded_since }}
        union all
        select cast(min(period) as timestamp)
        from {{ ledger_batches_since('psn_insu', loaded_since, 'period') }} as reloaded
     ) as changed)
    {%- else -%}
    (select {{ dbt.date_trunc('month', 'min(valid_from)') }} from {{ ref('int_enrollment_history') }})
    {%- endif -%}
{%- endset %}
{#- Every CTE here is read once: DuckDB materialises a CTE referenced more than once
    (a copy of the whole history, or of every month end). Persons with one version in a
    scheme group (97% of versions at `medium`) hold their scheme's primary enrollment
    wherever in force; only the others are ranked: ranking every row of every month cost
    more than the rest of the model. -#}
{%- set in_force -%}
    select
        months.period,
        history.person_key,
        history.psn_no,
        history.insutype,
        history.insuplc_admdvs,
        history.psn_insu_date,
        history.valid_from,
        history.scheme_group,
        -- Only these persons can hold two enrollments of a scheme at a month end: the
        -- duplicate-enrollment rule reads them alone, a filter that skips the other
        -- 97% of rows without reading their pseudonyms.
        history.has_alternatives,
        -- What this build took in: the latest enrollment batch of the ledger (an emptied
        -- batch leaves no row in the history), so it is not taken in twice.
        {{ ledger_latest_batch('psn_insu') }} as _source_loaded_at
    from ({{ month_spine(
        first_month,
        "(select " ~ dbt.date_trunc('month', 'max(valid_from)') ~ " from " ~ ref('int_enrollment_history') ~ ")"
    ) }}) as months
    inner join {{ ref('int_enrollment_history') }} as history
        on history.valid_from < {{ dbt.dateadd('month', 1, 'months.period') }}
        and (history.valid_to is null or history.valid_to >= {{ dbt.dateadd('month', 1, 'months.period') }})
    where history.psn_insu_stas = '1'
        and (history.psn_insu_date is null
            or history.psn_insu_date < {{ dbt.dateadd('month', 1, 'months.period') }})
        and (history.paus_insu_date is null
            or history.paus_insu_date >= {{ dbt.dateadd('month', 1, 'months.period') }})
{%- endset %}
with single as (
    select
        *,
        cast(1 as bigint) as enrollment_rank
    from ({{ in_force }}
        and not history.has_alternatives) as in_force
),

ranked as (
    select
        *,
        -- The person's primary enrollment of the scheme: the most recent one.
        row_number() over (
            partition by period, person_key, scheme_group
            order by psn_insu_date desc nulls last, valid_from desc, psn_no
        ) as enrollment_rank
    from ({{ in_force }}
        and history.has_alternatives) as in_force
),

final as (
    select * from single
    union all
    select * from ranked
)

select * from final
