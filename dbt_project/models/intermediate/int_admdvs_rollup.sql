{#- Every region code met in the data or the seed, paired with itself and each region
    above it (prefecture, province, nation): marts join it to count a record at every
    level with one plain join, the same SQL on any engine. -#}
with regions as (
    select admdvs from {{ ref('regions') }}
    where level not in ('national', 'province')
),

-- Enrollment and settlement codes from the raw tables, not the staging views: the views
-- rank every delivery (2 s a build at `medium`) to drop superseded ones, and a code
-- only a superseded delivery holds just adds a pair no record joins.
codes as (
    select admdvs from regions
    union
    select insuplc_admdvs from {{ source('raw', 'psn_insu') }}
    union
    select insuplc_admdvs from {{ source('raw', 'setl') }}
    union
    select mdtrtarea_admvs from {{ source('raw', 'setl') }}
    union
    select admdvs from {{ ref('stg_platform__fund_ledger') }}
    union
    select admdvs from {{ ref('stg_supervision__cases') }}
    union
    select admdvs from {{ ref('stg_supervision__recoveries') }}
),

pairs as (
    select admdvs as source_admdvs, admdvs from codes
    union
    select admdvs, {{ admdvs_prefecture('admdvs') }} from codes
    union
    select admdvs, {{ admdvs_province('admdvs') }} from codes
    union
    select admdvs, '{{ var("national_admdvs") }}' from codes
),

final as (
    select
        pairs.source_admdvs,
        pairs.admdvs,
        coalesce(regions.level, {{ admdvs_level('pairs.admdvs') }}) as admdvs_level,
        regions.name_zh as admdvs_name_zh,
        regions.name_en as admdvs_name_en
    from pairs
    left join {{ ref('regions') }} as regions
        on regions.admdvs = pairs.admdvs
)

select * from final
