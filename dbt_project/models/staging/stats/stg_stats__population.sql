with source as (
    select * from {{ source('raw', 'population') }}
),

latest as (
    select
        admdvs,
        cast(year as integer) as year,
        resident_pop,
        row_number() over (
            partition by admdvs, year
            order by _batch_path desc, _line_no desc
        ) as delivery_rank
    from source
)

select
    admdvs,
    year,
    resident_pop
from latest
where delivery_rank = 1
