{#- The GB/T 2260 divisions the warehouse knows, with their province and level. -#}
with regions as (
    select * from {{ ref('regions') }}
),

final as (
    select
        admdvs,
        name_zh,
        name_en,
        level,
        parent_admdvs,
        iso_3166_2,
        case
            when level = 'national' then null
            else {{ admdvs_province('admdvs') }}
        end as province_admdvs
    from regions
)

select * from final
