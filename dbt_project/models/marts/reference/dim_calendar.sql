{#- The months the warehouse holds data for, with year, half, quarter and labels. -#}
with bounds as (
    select
        min(period) as first_period,
        max(period) as last_period
    from {{ ref('stg_platform__setl') }}
),

months as (
    {{ month_spine("(select first_period from bounds)", "(select last_period from bounds)") }}
),

final as (
    select
        period,
        extract(year from period) as year,
        case when extract(month from period) <= 6 then 1 else 2 end as half,
        cast(floor((extract(month from period) - 1) / 3) + 1 as integer) as quarter,
        extract(month from period) as month,
        {{ dbt.concat(["cast(extract(year from period) as " ~ dbt.type_string() ~ ")", "'年'",
                       "cast(extract(month from period) as " ~ dbt.type_string() ~ ")", "'月'"]) }}
            as label_zh
    from months
)

select * from final
