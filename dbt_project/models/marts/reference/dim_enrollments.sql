{#- Persons' enrollment history (SCD2), as coverage counts it (int_enrollment_history).

    Incremental by person, like the history: a build redoes the persons whose versions
    the history rebuilt since, and the pre-hook drops the persons the history no longer
    holds (a corrected batch that took a person's only enrollment away). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='person_key',
    on_schema_change='append_new_columns',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where person_key not in (select person_key from {{ ref('int_enrollment_history') }}){% endif %}"
) }}
with history as (
    select * from {{ ref('int_enrollment_history') }}
    {% if is_incremental() %}
    where person_key in (
        select person_key from {{ ref('int_enrollment_history') }}
        where _built_at > {{ incremental_watermark('_source_built_at') }}
    )
    {% endif %}
),

final as (
    select
        person_key,
        psn_no,
        insutype,
        insuplc_admdvs,
        psn_type,
        psn_insu_stas,
        psn_insu_date,
        paus_insu_date,
        gend,
        birth_year,
        valid_from,
        valid_to,
        is_current,
        _built_at as _source_built_at
    from history
)

select * from final
