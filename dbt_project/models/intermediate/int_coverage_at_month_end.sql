{#- Enrollments in force at each month end, counted per period × pooling region ×
    insurance type: all of them, the primary ones (a person counted once per scheme
    nationally) and the duplicates. The persons with one version in their scheme group
    are counted straight from the history (each is their scheme's primary enrollment
    wherever in force); the others from their ranked rows in
    int_enrollments_at_month_end. coverage_monthly rolls these up the regions.

    Incremental by month, like the month ends (macros/month_ends.sql). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='period',
    on_schema_change='append_new_columns'
) }}
{%- set first_month = month_ends_first_month(['_source_loaded_at']) %}
with enrollments as (
    -- The persons with one version in their scheme group: primary wherever in force.
    select
        period,
        insuplc_admdvs,
        insutype,
        scheme_group,
        cast(1 as bigint) as enrollment_rank
    from ({{ enrollments_in_force(first_month, alternatives=false) }}) as in_force
    union all
    select
        period,
        insuplc_admdvs,
        insutype,
        scheme_group,
        enrollment_rank
    from {{ ref('int_enrollments_at_month_end') }}
    -- The month ends are current in every month (they redo what changed since they
    -- last took in the ledger): these months' rows are read as they are now.
    where period >= cast({{ first_month }} as date)
),

final as (
    select
        period,
        insuplc_admdvs,
        insutype,
        scheme_group,
        count(*) as enrollments,
        count(*) filter (where enrollment_rank = 1) as primary_enrollments,
        count(*) filter (where enrollment_rank > 1) as duplicate_enrollments,
        -- What this build took in: the latest enrollment batch of the ledger.
        {{ ledger_latest_batch('psn_insu') }} as _source_loaded_at
    from enrollments
    group by period, insuplc_admdvs, insutype, scheme_group
)

select * from final
