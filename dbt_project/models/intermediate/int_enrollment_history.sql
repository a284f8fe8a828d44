{#- Persons' enrollment history (SCD2): one row per version of an enrollment (person
    number × insurance type × pooling region), valid from its change until the next.
    Persons appear only by pseudonym; of the birth date only the year is kept. Coverage
    (int_enrollments_at_month_end) and marts.dim_enrollments both read it. -#}
with changes as (
    select * from {{ ref('stg_platform__psn_insu') }}
),

versions as (
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
        extract(year from brdy) as birth_year,
        updt_time as valid_from,
        batch_processed_at,
        lead(updt_time) over (
            partition by psn_no, insutype, insuplc_admdvs
            order by updt_time, batch_path, line_no
        ) as valid_to
    from changes
),

final as (
    select
        *,
        valid_to is null as is_current
    from versions
)

select * from final
