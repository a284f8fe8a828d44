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
    (select {{ dbt.date_trunc('month', 'min(valid_from)') }} from {{ ref('int_enrollment_history') }}
     where batch_processed_at > {{ incremental_watermark('_source_loaded_at') }})
    {%- else -%}
    (select {{ dbt.date_trunc('month', 'min(valid_from)') }} from {{ ref('int_enrollment_history') }})
    {%- endif -%}
{%- endset %}
{#- The bounds and the load time read the table itself, not the `history` CTE: a CTE
    referenced more than once is materialised by DuckDB, a copy of the whole history. -#}
with history as (
    select * from {{ ref('int_enrollment_history') }}
),

-- Basic coverage is one scheme: a person in both 310 and 390 is enrolled twice. A
-- person with one version in a scheme group is its primary enrollment wherever in
-- force; only the others (3% of versions at `medium`) need ranking, and ranking every row
-- of every month cost more than the rest of the model.
grouped as (
    select
        *,
        count(*) over (partition by person_key, scheme_group) > 1 as has_alternatives
    from (
        select
            *,
            case
                when insutype in ('{{ var("basic_insutypes") | join("', '") }}') then 'basic'
                else insutype
            end as scheme_group
        from history
    ) as with_group
),

months as (
    {{ month_spine(
        first_month,
        "(select " ~ dbt.date_trunc('month', 'max(valid_from)') ~ " from " ~ ref('int_enrollment_history') ~ ")"
    ) }}
),

at_month_end as (
    select
        months.period,
        grouped.person_key,
        grouped.psn_no,
        grouped.insutype,
        grouped.insuplc_admdvs,
        grouped.psn_insu_date,
        grouped.valid_from,
        grouped.psn_insu_stas,
        grouped.paus_insu_date,
        grouped.scheme_group,
        grouped.has_alternatives
    from months
    inner join grouped
        on grouped.valid_from < {{ dbt.dateadd('month', 1, 'months.period') }}
        and (grouped.valid_to is null or grouped.valid_to >= {{ dbt.dateadd('month', 1, 'months.period') }})
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
        scheme_group,
        has_alternatives
    from at_month_end
    where psn_insu_stas = '1'
        and (psn_insu_date is null or psn_insu_date < {{ dbt.dateadd('month', 1, 'period') }})
        and (paus_insu_date is null or paus_insu_date >= {{ dbt.dateadd('month', 1, 'period') }})
),

final as (
    select
        in_force.period,
        in_force.person_key,
        in_force.psn_no,
        in_force.insutype,
        in_force.insuplc_admdvs,
        in_force.psn_insu_date,
        in_force.valid_from,
        in_force.scheme_group,
        (select max(batch_processed_at) from {{ ref('int_enrollment_history') }}) as _source_loaded_at,
        cast(1 as bigint) as enrollment_rank
    from in_force
    where not in_force.has_alternatives

    union all

    select
        in_force.period,
        in_force.person_key,
        in_force.psn_no,
        in_force.insutype,
        in_force.insuplc_admdvs,
        in_force.psn_insu_date,
        in_force.valid_from,
        in_force.scheme_group,
        (select max(batch_processed_at) from {{ ref('int_enrollment_history') }}) as _source_loaded_at,
        -- The person's primary enrollment of the scheme: the most recent one.
        row_number() over (
            partition by in_force.period, in_force.person_key, in_force.scheme_group
            order by in_force.psn_insu_date desc nulls last, in_force.valid_from desc, in_force.psn_no
        ) as enrollment_rank
    from in_force
    where in_force.has_alternatives
)

select * from final
