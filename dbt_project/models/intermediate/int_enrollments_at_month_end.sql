{#- Which enrollments are in force at the end of each month: the enrollment changes
    become validity intervals (SCD2), and each interval is matched to the month ends
    it covers, so a month costs only the intervals that span it.

    Incremental by month: a change valid from month M can only alter month ends from M
    on (it closes the version before it at M), so a build redoes the months from the
    earliest change among batches loaded since the last build; none when nothing new. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='period',
    on_schema_change='append_new_columns'
) }}
{%- set first_month -%}
    {%- if is_incremental() -%}
    (select {{ dbt.date_trunc('month', 'min(valid_from)') }} from history
     where batch_processed_at > {{ incremental_watermark('_source_loaded_at') }})
    {%- else -%}
    (select {{ dbt.date_trunc('month', 'min(valid_from)') }} from history)
    {%- endif -%}
{%- endset %}
with history as (
    select * from {{ ref('int_enrollment_history') }}
),

months as (
    {{ month_spine(
        first_month,
        "(select " ~ dbt.date_trunc('month', 'max(valid_from)') ~ " from history)"
    ) }}
),

at_month_end as (
    select
        months.period,
        history.person_key,
        history.psn_no,
        history.insutype,
        history.insuplc_admdvs,
        history.psn_insu_date,
        history.valid_from,
        history.psn_insu_stas,
        history.paus_insu_date
    from months
    inner join history
        on history.valid_from < {{ dbt.dateadd('month', 1, 'months.period') }}
        and (history.valid_to is null or history.valid_to >= {{ dbt.dateadd('month', 1, 'months.period') }})
),

in_force as (
    select
        period,
        person_key,
        psn_no,
        insutype,
        insuplc_admdvs,
        psn_insu_date,
        valid_from,
        -- Basic coverage is one scheme: a person in both 310 and 390 is enrolled twice.
        case
            when insutype in ('{{ var("basic_insutypes") | join("', '") }}') then 'basic'
            else insutype
        end as scheme_group
    from at_month_end
    where psn_insu_stas = '1'
        and (psn_insu_date is null or psn_insu_date < {{ dbt.dateadd('month', 1, 'period') }})
        and (paus_insu_date is null or paus_insu_date >= {{ dbt.dateadd('month', 1, 'period') }})
),

final as (
    select
        *,
        (select max(batch_processed_at) from history) as _source_loaded_at,
        -- The person's primary enrollment of the scheme: the most recent one.
        row_number() over (
            partition by period, person_key, scheme_group
            order by psn_insu_date desc nulls last, valid_from desc, psn_no
        ) as enrollment_rank
    from in_force
)

select * from final
