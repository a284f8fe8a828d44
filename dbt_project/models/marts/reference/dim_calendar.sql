{#- The months the warehouse holds data for, with year, half, quarter and labels. -#}
-- The months of the settlement batches loaded, from the ledger: the staging view's
-- bounds cost a read of every settlement (1.3 s a build at `medium`). A settlement
-- outside its batch's month is quarantined at the door, so the months are the same.
with bounds as (
    select
        min(period) as first_period,
        max(period) as last_period
    from {{ source('ops', 'batches') }}
    where feed = 'setl'
        and rows_loaded > 0
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
