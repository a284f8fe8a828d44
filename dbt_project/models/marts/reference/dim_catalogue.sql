with catalogue as (
    select * from {{ ref('catalogue') }}
),

final as (
    select
        hilist_code,
        hilist_name,
        med_chrgitm_type,
        chrgitm_lv,
        case chrgitm_lv
            when '01' then 'class A'
            when '02' then 'class B'
            when '03' then 'self-paid'
        end as chrgitm_lv_name_en,
        case chrgitm_lv
            when '01' then '甲类'
            when '02' then '乙类'
            when '03' then '丙类'
        end as chrgitm_lv_name_zh,
        item_flag,
        coalesce(item_flag like 'excluded%', false) as is_excluded
    from catalogue
)

select * from final
