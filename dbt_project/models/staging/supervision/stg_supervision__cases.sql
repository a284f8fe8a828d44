with source as (
    select * from {{ source('raw', 'supervision_case') }}
),

latest as (
    select
        *,
        {{ latest_delivery_rank(['case_id'], '_batch_path', '_line_no') }} as delivery_rank
    from source
),

renamed as (
    select
        case_id,
        admdvs,
        fixmedins_code,
        case_source,
        violation_type,
        open_date,
        close_date,
        involved_amt,
        fine_amt,
        action,
        status
    from latest
    where delivery_rank = 1
)

select * from renamed
