with source as (
    select * from {{ source('raw', 'population') }}
),

latest as (
    select
        admdvs,
        cast(year as integer) as year,
        resident_pop,
        {{ latest_delivery_rank(['admdvs', 'year'], '_batch_path', '_line_no') }} as delivery_rank
    from source
)

select
    admdvs,
    year,
    resident_pop
from latest
where delivery_rank = 1
