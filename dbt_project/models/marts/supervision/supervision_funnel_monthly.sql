{#- From a rule firing to money back in the fund, by month, region (where treated, and
    every region above it) and rule category: suspect amount → cases opened →
    recovered. Cases and recoveries reach a category through their violation type
    (seeds/rules/violation_categories.csv); recoveries without a case (self-inspection
    returns) are `unattributed`. -#}
with hits as (
    select * from {{ ref('rule_hits') }}
),

cases as (
    select * from {{ ref('stg_supervision__cases') }}
),

recoveries as (
    select * from {{ ref('stg_supervision__recoveries') }}
),

categories as (
    select * from {{ ref('violation_categories') }}
),

rollup as (
    select * from {{ ref('int_admdvs_rollup') }}
),

events as (
    select
        period,
        admdvs,
        category,
        1 as hits,
        setl_id,
        suspect_amt,
        0 as cases_opened,
        cast(0 as decimal(18, 2)) as involved_amt,
        cast(0 as decimal(18, 2)) as recovered_amt
    from hits
    union all
    select
        cast({{ dbt.date_trunc('month', 'cases.open_date') }} as date),
        cases.admdvs,
        coalesce(categories.category, 'unattributed'),
        0,
        null,
        0,
        1,
        cases.involved_amt,
        0
    from cases
    left join categories
        on categories.violation_type = cases.violation_type
    union all
    select
        cast({{ dbt.date_trunc('month', 'recoveries.recovered_date') }} as date),
        recoveries.admdvs,
        coalesce(categories.category, 'unattributed'),
        0,
        null,
        0,
        0,
        0,
        recoveries.recovered_amt
    from recoveries
    left join cases
        on cases.case_id = recoveries.case_id
    left join categories
        on categories.violation_type = cases.violation_type
),

final as (
    select
        events.period,
        rollup.admdvs,
        rollup.admdvs_level,
        rollup.admdvs_name_zh,
        rollup.admdvs_name_en,
        events.category,
        sum(events.hits) as rule_hits,
        count(distinct events.setl_id) as settlements_flagged,
        cast(sum(events.suspect_amt) as decimal(18, 2)) as suspect_amt,
        sum(events.cases_opened) as cases_opened,
        cast(sum(events.involved_amt) as decimal(18, 2)) as involved_amt,
        cast(sum(events.recovered_amt) as decimal(18, 2)) as recovered_amt
    from events
    inner join rollup
        on rollup.source_admdvs = events.admdvs
    group by
        events.period,
        rollup.admdvs,
        rollup.admdvs_level,
        rollup.admdvs_name_zh,
        rollup.admdvs_name_en,
        events.category
)

select * from final
