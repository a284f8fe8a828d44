with source as (
    select * from {{ source('raw', 'fund_recovery') }}
),

latest as (
    select
        *,
        row_number() over (
            partition by recovery_id
            order by _batch_path desc, _line_no desc
        ) as delivery_rank
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
