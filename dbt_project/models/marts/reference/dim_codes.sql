{#- Every diagnosis and procedure code met on a settlement, with its chapter in the
    terminology and whether a sex or age restriction applies to it.

    The codes are read from the raw deliveries, as the region rollup reads its codes:
    the staging view would first pick each settlement's latest delivery (1 s a build at
    `medium`), and a code met on any delivery belongs in the dimension all the same. -#}
with settlements as (
    select diag_code, oprn_oprt_code from {{ source('raw', 'setl') }}
),

ranges as (
    select * from {{ ref('dim_code_ranges') }}
),

codes as (
    select distinct
        'diagnosis' as code_system,
        diag_code as code,
        {{ normalise_code('diag_code') }} as code_norm
    from settlements
    where diag_code is not null
    union
    select distinct
        'procedure',
        oprn_oprt_code,
        {{ normalise_code('oprn_oprt_code') }}
    from settlements
    where oprn_oprt_code is not null
),

matched as (
    select
        codes.code_system,
        codes.code,
        ranges.level,
        ranges.range_id,
        ranges.name_en,
        ranges.name_zh,
        ranges.restriction
    from codes
    inner join ranges
        on ranges.code_system = codes.code_system
        and {{ code_in_range('codes.code_norm', 'ranges') }}
),

final as (
    select
        codes.code_system,
        codes.code,
        codes.code_norm,
        max(case when matched.level = 'chapter' then matched.range_id end) as chapter,
        max(case when matched.level = 'chapter' then matched.name_en end) as chapter_name_en,
        max(case when matched.level = 'chapter' then matched.name_zh end) as chapter_name_zh,
        max(matched.restriction) as restriction,
        count(matched.restriction) > 0 as is_restricted
    from codes
    left join matched
        on matched.code_system = codes.code_system
        and matched.code = codes.code
    group by
        codes.code_system,
        codes.code,
        codes.code_norm
)

select * from final
