{#- The enrollments that need ranking at each month end: those of persons with more
    than one version in a scheme group (3% of versions at `medium`), one row per
    period × enrollment in force, ranked among the person's enrollments of the scheme.
    Everyone else holds their scheme's primary enrollment wherever in force:
    int_coverage_at_month_end counts them without a row each (a row per month end of
    every enrollment was 20 million rows at `medium` and most of this model's 5.6 s).
    The duplicate-enrollment rule reads this model.

    Incremental by month (macros/month_ends.sql). A table from before this split also
    held the single enrollments: the pre-hook drops them once. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='period',
    on_schema_change='append_new_columns',
    pre_hook="{% if is_incremental_with(['has_alternatives']) %}delete from {{ this }} where not has_alternatives{% endif %}"
) }}
{%- set first_month = month_ends_first_month(['has_alternatives']) %}
with in_force as (
    {{ enrollments_in_force(first_month, alternatives=true) }}
),

ranked as (
    select
        *,
        -- The person's primary enrollment of the scheme: the most recent one.
        row_number() over (
            partition by period, person_key, scheme_group
            order by psn_insu_date desc nulls last, valid_from desc, psn_no
        ) as enrollment_rank
    from in_force
)

select * from ranked
