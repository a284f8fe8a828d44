{#- Inspection cases opened and closed and money returned to the fund, by month, region
    (and every region above it) and the source of the case. A return without a case
    (自查自纠, self-inspection) counts under `self_inspection`. -#}
with cases as (
    select * from {{ ref('stg_supervision__cases') }}
),

recoveries as (
    select * from {{ ref('stg_supervision__recoveries') }}
),

rollup as (
    select * from {{ ref('int_admdvs_rollup') }}
),

events as (
    select
        cast({{ dbt.date_trunc('month', 'open_date') }} as date) as period,
        admdvs,
        case_source,
        1 as cases_opened,
        0 as cases_closed,
        involved_amt,
        fine_amt,
        0 as recoveries,
        cast(0 as decimal(18, 2)) as recovered_amt
    from cases
    union all
    select
        cast({{ dbt.date_trunc('month', 'close_date') }} as date),
        admdvs,
        case_source,
        0,
        1,
        0,
        0,
        0,
        0
    from cases
    where close_date is not null
    union all
    select
        cast({{ dbt.date_trunc('month', 'recoveries.recovered_date') }} as date),
        recoveries.admdvs,
        coalesce(cases.case_source, 'self_inspection'),
        0,
        0,
        0,
        0,
        1,
        recoveries.recovered_amt
    from recoveries
    left join cases
        on cases.case_id = recoveries.case_id
),

aggregated as (
    select
        events.period,
        rollup.admdvs,
        events.case_source,
        sum(events.cases_opened) as cases_opened,
        sum(events.cases_closed) as cases_closed,
        sum(events.involved_amt) as involved_amt,
        sum(events.fine_amt) as fine_amt,
        sum(events.recoveries) as recoveries,
        sum(events.recovered_amt) as recovered_amt
    from events
    inner join rollup
        on rollup.source_admdvs = events.admdvs
    group by events.period, rollup.admdvs, events.case_source
),

final as (
    select
        aggregated.period,
        aggregated.admdvs,
        levels.admdvs_level,
        levels.admdvs_name_zh,
        levels.admdvs_name_en,
        aggregated.case_source,
        aggregated.cases_opened,
        aggregated.cases_closed,
        cast(aggregated.involved_amt as decimal(18, 2)) as involved_amt,
        cast(aggregated.fine_amt as decimal(18, 2)) as fine_amt,
        aggregated.recoveries,
        cast(aggregated.recovered_amt as decimal(18, 2)) as recovered_amt
    from aggregated
    inner join (select distinct admdvs, admdvs_level, admdvs_name_zh, admdvs_name_en from rollup) as levels
        on levels.admdvs = aggregated.admdvs
)

select * from final
