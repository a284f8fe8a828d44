{#- Fund ledger lines, typed; a region × month × fund delivered twice keeps its latest. -#}
with source as (
    select * from {{ source('raw', 'fund_ledger') }}
),

latest as (
    select
        *,
        {{ latest_delivery_rank(['admdvs', 'period', 'fund_type'], '_batch_path', '_line_no') }} as delivery_rank
    from source
),

renamed as (
    select
        admdvs,
        cast(period || '-01' as date) as period,
        fund_type,
        bal_open,
        inc_contrib,
        inc_subsidy,
        inc_interest,
        inc_other,
        exp_benefit,
        exp_other,
        bal_close
    from latest
    where delivery_rank = 1
)

select * from renamed
