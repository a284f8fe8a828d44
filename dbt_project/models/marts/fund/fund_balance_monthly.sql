{#- Each fund's month by region (and every region above it): income, expenditure,
    balance, and months of reserve (累计结存可支付月数) = closing balance ÷ average monthly
    expenditure over the trailing 12 months, banded by the alert variables. -#}
with ledger as (
    select * from {{ ref('stg_platform__fund_ledger') }}
),

rollup as (
    select * from {{ ref('int_admdvs_rollup') }}
),

fund_types as (
    select * from {{ ref('fund_types') }}
),

summed as (
    select
        ledger.period,
        rollup.admdvs,
        ledger.fund_type,
        count(*) as ledger_lines,
        sum(ledger.bal_open) as bal_open,
        sum(ledger.inc_contrib) as inc_contrib,
        sum(ledger.inc_subsidy) as inc_subsidy,
        sum(ledger.inc_interest) as inc_interest,
        sum(ledger.inc_other) as inc_other,
        sum(ledger.exp_benefit) as exp_benefit,
        sum(ledger.exp_other) as exp_other,
        sum(ledger.bal_close) as bal_close
    from ledger
    inner join rollup
        on rollup.source_admdvs = ledger.admdvs
    group by ledger.period, rollup.admdvs, ledger.fund_type
),

with_totals as (
    select
        *,
        inc_contrib + inc_subsidy + inc_interest + inc_other as income,
        exp_benefit + exp_other as expenditure
    from summed
),

windowed as (
    select
        *,
        -- Months are consecutive per region and fund in the ledger; the window counts
        -- how many it averaged, so a young series shows it.
        avg(expenditure) over (
            partition by admdvs, fund_type
            order by period
            rows between 11 preceding and current row
        ) as avg_monthly_expenditure_12m,
        count(*) over (
            partition by admdvs, fund_type
            order by period
            rows between 11 preceding and current row
        ) as months_in_average,
        lag(bal_close) over (partition by admdvs, fund_type order by period) as previous_bal_close
    from with_totals
),

final as (
    select
        windowed.period,
        windowed.admdvs,
        levels.admdvs_level,
        levels.admdvs_name_zh,
        levels.admdvs_name_en,
        windowed.fund_type,
        fund_types.name_en as fund_type_name_en,
        fund_types.name_zh as fund_type_name_zh,
        cast(windowed.bal_open as decimal(18, 2)) as bal_open,
        cast(windowed.income as decimal(18, 2)) as income,
        cast(windowed.inc_contrib as decimal(18, 2)) as inc_contrib,
        cast(windowed.inc_subsidy as decimal(18, 2)) as inc_subsidy,
        cast(windowed.inc_interest as decimal(18, 2)) as inc_interest,
        cast(windowed.inc_other as decimal(18, 2)) as inc_other,
        cast(windowed.expenditure as decimal(18, 2)) as expenditure,
        cast(windowed.exp_benefit as decimal(18, 2)) as exp_benefit,
        cast(windowed.exp_other as decimal(18, 2)) as exp_other,
        cast(windowed.income - windowed.expenditure as decimal(18, 2)) as net_change,
        cast(windowed.bal_close as decimal(18, 2)) as bal_close,
        cast(windowed.avg_monthly_expenditure_12m as decimal(18, 2)) as avg_monthly_expenditure_12m,
        windowed.months_in_average,
        case
            when windowed.avg_monthly_expenditure_12m > 0
                then round(windowed.bal_close / windowed.avg_monthly_expenditure_12m, 2)
        end as months_of_reserve,
        case
            when windowed.avg_monthly_expenditure_12m is null
                or windowed.avg_monthly_expenditure_12m <= 0 then null
            when windowed.bal_close / windowed.avg_monthly_expenditure_12m
                < {{ var('reserve_months_critical_below') }} then 'critical'
            when windowed.bal_close / windowed.avg_monthly_expenditure_12m
                < {{ var('reserve_months_low_below') }} then 'low'
            when windowed.bal_close / windowed.avg_monthly_expenditure_12m
                <= {{ var('reserve_months_high_above') }} then 'normal'
            else 'high'
        end as reserve_alert,
        -- The ledger's identity and its chain from month to month.
        windowed.bal_close = windowed.bal_open + windowed.income - windowed.expenditure
            as balance_identity_holds,
        windowed.previous_bal_close is null or windowed.bal_open = windowed.previous_bal_close
            as balance_continuous,
        windowed.ledger_lines,
        -- Dashboards show "the latest month" without a sub-query (Superset refuses them).
        windowed.period = max(windowed.period) over () as is_latest_period
    from windowed
    inner join (select distinct admdvs, admdvs_level, admdvs_name_zh, admdvs_name_en from rollup) as levels
        on levels.admdvs = windowed.admdvs
    left join fund_types
        on fund_types.fund_type = windowed.fund_type
)

select * from final
