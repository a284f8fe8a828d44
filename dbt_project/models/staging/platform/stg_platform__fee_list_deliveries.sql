{#- Fee detail lines, every delivery of them, typed, with when the door loaded their
    batch. stg_platform__fee_list keeps the latest delivery of each line; the
    incremental int_rule_fee_lines picks its settlements' lines here first and keeps
    the latest after, so that it does not rank every line ever delivered. -#}
with source as (
    select * from {{ source('raw', 'fee_list') }}
),

batches as (
    select * from {{ source('ops', 'batches') }}
),

renamed as (
    select
        source.setl_id,
        source.feedetl_sn,
        source.mdtrt_id,
        source.psn_no,
        source.fee_ocur_time,
        source.hilist_code,
        source.hilist_name,
        source.med_chrgitm_type,
        source.chrgitm_lv,
        source.cnt,
        source.pric,
        source.det_item_fee_sumamt,
        source.selfpay_prop,
        source.bilg_dr_codg,
        source.fixmedins_code,
        source._batch_path as batch_path,
        source._line_no as line_no,
        batches.processed_at as batch_processed_at
    from source
    left join batches
        on batches.path = source._batch_path
)

select * from renamed
