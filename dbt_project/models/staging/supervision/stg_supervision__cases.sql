with source as (
    select * from {{ source('raw', 'supervision_case') }}
),

latest as (
    select
        *,
        row_number() over (
            partition by case_id
            order by _batch_path desc, _line_no desc
        ) as delivery_rank
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
