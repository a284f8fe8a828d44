{#- Persons' enrollment history (SCD2), as coverage counts it (int_enrollment_history). -#}
with history as (
    select * from {{ ref('int_enrollment_history') }}
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
        is_current
    from history
)

select * from final
