{#- The enrollment month ends, shared by int_enrollments_at_month_end (the enrollments
    that need ranking, one row each) and int_coverage_at_month_end (counts).

    Incremental by month: a change valid from month M can only alter month ends from M
    on (it closes the version before it at M), so a build redoes the months from the
    earliest change among batches loaded since the calling model last took in the
    ledger (its `_source_loaded_at`), and from the month of any enrollment batch loaded
    since (read from the ledger: a batch sent again with records removed, or with none
    left, takes changes away and leaves none to be found from); none when nothing new.
    `required` names the columns the model must hold to build incrementally. -#}
{% macro month_ends_first_month(required) -%}
    {%- if is_incremental_with(required) -%}
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
{%- endmacro %}

{#- The enrollment versions in force at each month end from `first_month` on, one row
    per period × version, with what the build took in (`_source_loaded_at`: the latest
    enrollment batch of the ledger, so an emptied batch, which leaves no row in the
    history, is not taken in twice). `alternatives`: true for the versions of persons
    with more than one in their scheme group (only they can hold two enrollments of a
    scheme at a month end: 3% of rows at `medium`), false for the others; the filter
    skips the other rows before their pseudonyms are read. -#}
{% macro enrollments_in_force(first_month, alternatives) -%}
    select
        months.period,
        history.person_key,
        history.psn_no,
        history.insutype,
        history.insuplc_admdvs,
        history.psn_insu_date,
        history.valid_from,
        history.scheme_group,
        history.has_alternatives,
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
        and {% if not alternatives %}not {% endif %}history.has_alternatives
{%- endmacro %}
