{#- Registered practitioners as each period's snapshot lists them; names never pass
    the door. -#}
with source as (
    select * from {{ source('raw', 'practitioner') }}
),

batches as (
    select * from {{ source('ops', 'batches') }}
),

snapshots as (
    select
        source.dr_code,
        source.fixmedins_code,
        source.dr_type,
        source.vali_flag,
        batches.period,
        {{ latest_delivery_rank(['source.dr_code', 'batches.period'], 'source._batch_path', 'source._line_no') }} as line_rank
    from source
    inner join batches
        on batches.path = source._batch_path
)

select
    dr_code,
    fixmedins_code,
    dr_type,
    vali_flag,
    period
from snapshots
where line_rank = 1
