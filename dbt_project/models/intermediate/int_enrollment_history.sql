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

grouped as (
    select
        *,
        -- Basic coverage is one scheme: a person in both 310 and 390 is enrolled twice.
        case
            when insutype in ('{{ var("basic_insutypes") | join("', '") }}') then 'basic'
            else insutype
        end as scheme_group
    from versions
),

final as (
    select
        *,
        valid_to is null as is_current,
        -- More than one version in the scheme group: only such persons' month ends need
        -- ranking to find the primary enrollment (int_enrollments_at_month_end).
        count(*) over (partition by person_key, scheme_group) > 1 as has_alternatives
    from grouped
)

select * from final
