{#- The fund ledger's benefit expenditure against what the settlements we hold say the
    fund paid, per month, region (and every region above it) and fund. A mismatch
    means settlements missing (quarantined, not yet delivered) or a ledger that does
    not follow its claims. Long-term care pays no settlements and is left out. -#}
with ledger as (
    select * from {{ ref('stg_platform__fund_ledger') }}
    where fund_type <> 'ltc'
),

payments as (
    select * from {{ ref('int_settlement_fund_payments') }}
),

rollup as (
    select * from {{ ref('int_admdvs_rollup') }}
),

fund_types as (
    select * from {{ ref('fund_types') }}
),

joined as (
    select
        coalesce(ledger.period, payments.period) as period,
        coalesce(ledger.admdvs, payments.admdvs) as admdvs,
        coalesce(ledger.fund_type, payments.fund_type) as fund_type,
        ledger.exp_benefit,
        payments.fund_paid,
        payments.settlements
    from ledger
    full outer join payments
        on payments.period = ledger.period
        and payments.admdvs = ledger.admdvs
        and payments.fund_type = ledger.fund_type
),

aggregated as (
    select
        joined.period,
        rollup.admdvs,
        joined.fund_type,
        sum(joined.exp_benefit) as ledger_exp_benefit,
        coalesce(sum(joined.fund_paid), 0) as settlement_fund_paid,
        coalesce(sum(joined.settlements), 0) as settlements,
        count(joined.exp_benefit) as ledger_lines
    from joined
    inner join rollup
        on rollup.source_admdvs = joined.admdvs
    group by joined.period, rollup.admdvs, joined.fund_type
),

final as (
    select
        aggregated.period,
        aggregated.admdvs,
        levels.admdvs_level,
        levels.admdvs_name_zh,
        levels.admdvs_name_en,
        aggregated.fund_type,
        fund_types.name_en as fund_type_name_en,
        fund_types.name_zh as fund_type_name_zh,
        cast(aggregated.ledger_exp_benefit as decimal(18, 2)) as ledger_exp_benefit,
        cast(aggregated.settlement_fund_paid as decimal(18, 2)) as settlement_fund_paid,
        aggregated.settlements,
        cast(coalesce(aggregated.ledger_exp_benefit, 0) - aggregated.settlement_fund_paid
            as decimal(18, 2)) as difference,
        case
            when aggregated.ledger_exp_benefit <> 0
                then round(
                    (aggregated.ledger_exp_benefit - aggregated.settlement_fund_paid)
                    / aggregated.ledger_exp_benefit, 6)
        end as difference_share,
        case
            when aggregated.ledger_lines = 0 then 'no_ledger'
            when abs(aggregated.ledger_exp_benefit - aggregated.settlement_fund_paid)
                <= greatest(
                    {{ var('reconciliation_tolerance_yuan') }},
                    {{ var('reconciliation_tolerance_share') }} * abs(aggregated.ledger_exp_benefit)
                ) then 'match'
            else 'mismatch'
        end as reconciliation_flag
    from aggregated
    inner join (select distinct admdvs, admdvs_level, admdvs_name_zh, admdvs_name_en from rollup) as levels
        on levels.admdvs = aggregated.admdvs
    left join fund_types
        on fund_types.fund_type = aggregated.fund_type
)

select * from final
