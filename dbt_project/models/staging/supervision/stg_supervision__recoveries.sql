with source as (
    select * from {{ source('raw', 'fund_recovery') }}
),

latest as (
    select
        *,
        {{ latest_delivery_rank(['recovery_id'], '_batch_path', '_line_no') }} as delivery_rank
    from source
),

renamed as (
    select
        recovery_id,
        case_id,
        admdvs,
        fixmedins_code,
        recovered_date,
        recovered_amt
    from latest
    where delivery_rank = 1
)

select * from renamed
