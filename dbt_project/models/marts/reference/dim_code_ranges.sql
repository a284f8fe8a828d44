{#- The diagnosis (ICD-10 医保版) and procedure (ICD-9-CM-3 医保版) terminology as
    ranges: chapters, blocks and categories with the sex and ages they are reserved
    to. Codes are compared on the range's prefix length (see macro rule_code_restrictions). -#}
with icd10 as (
    select * from {{ ref('icd10_ranges') }}
),

icd9cm3 as (
    select * from {{ ref('icd9cm3_ranges') }}
),

unioned as (
    select
        'diagnosis' as code_system,
        'ICD-10' as terminology,
        range_id,
        level,
        code_from,
        code_to,
        name_en,
        name_zh,
        sex,
        age_min,
        age_max,
        restriction,
        source
    from icd10
    union all
    select
        'procedure',
        'ICD-9-CM-3',
        range_id,
        level,
        code_from,
        code_to,
        name_en,
        name_zh,
        sex,
        age_min,
        age_max,
        restriction,
        source
    from icd9cm3
),

final as (
    select
        *,
        length(code_from) as code_length
    from unioned
)

select * from final
