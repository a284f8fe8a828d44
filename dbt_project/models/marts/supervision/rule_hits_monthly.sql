{#- Rule hits summed by month, province, institution and rule: what the supervision
    dashboard reads (hits by rule and province, top institutions), small enough to
    answer in milliseconds at any scale, with names so nobody has to look codes up. -#}
with hits as (
    select * from {{ ref('rule_hits') }}
),

rules as (
    select * from {{ ref('rule_base') }}
),

regions as (
    select * from {{ ref('dim_regions') }}
),

institutions as (
    select * from {{ ref('dim_institutions') }}
    where is_current
),

by_institution as (
    select
        period,
        {{ admdvs_province('admdvs') }} as province,
        admdvs,
        fixmedins_code,
        rule_id,
        count(*) as hits,
        count(distinct setl_id) as settlements_flagged,
        cast(sum(suspect_amt) as decimal(18, 2)) as suspect_amt
    from hits
    group by period, {{ admdvs_province('admdvs') }}, admdvs, fixmedins_code, rule_id
),

final as (
    select
        by_institution.period,
        by_institution.province,
        regions.name_zh as province_name_zh,
        regions.name_en as province_name_en,
        by_institution.admdvs,
        by_institution.fixmedins_code,
        institutions.fixmedins_name,
        by_institution.rule_id,
        rules.name_zh as rule_name_zh,
        rules.name_en as rule_name_en,
        rules.category,
        rules.severity,
        by_institution.hits,
        by_institution.settlements_flagged,
        by_institution.suspect_amt
    from by_institution
    inner join rules
        on rules.rule_id = by_institution.rule_id
    left join regions
        on regions.admdvs = by_institution.province
    left join institutions
        on institutions.fixmedins_code = by_institution.fixmedins_code
)

select * from final
