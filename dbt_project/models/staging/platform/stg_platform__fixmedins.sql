{#- Designated institutions as each period's snapshot lists them (the period of the
    batch that carried the line); one line per institution and period. -#}
with source as (
    select * from {{ source('raw', 'fixmedins') }}
),

batches as (
    select * from {{ source('ops', 'batches') }}
),

snapshots as (
    select
        source.fixmedins_code,
        source.fixmedins_name,
        source.fixmedins_type,
        source.hosp_lv,
        source.admdvs,
        source.agmt_begndate,
        source.agmt_enddate,
        source.vali_flag,
        batches.period,
        {{ latest_delivery_rank(['source.fixmedins_code', 'batches.period'], 'source._batch_path', 'source._line_no') }} as line_rank
    from source
    inner join batches
        on batches.path = source._batch_path
)

select
    fixmedins_code,
    fixmedins_name,
    fixmedins_type,
    hosp_lv,
    admdvs,
    agmt_begndate,
    agmt_enddate,
    vali_flag,
    period
from snapshots
where line_rank = 1
