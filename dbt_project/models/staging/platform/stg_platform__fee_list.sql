{#- Fee detail lines as delivered, typed; a line (setl_id × feedetl_sn) delivered twice
    keeps its latest delivery, like its settlement. -#}
with deliveries as (
    select * from {{ ref('stg_platform__fee_list_deliveries') }}
),

ranked as (
    select
        *,
        {{ latest_delivery_rank(['setl_id', 'feedetl_sn']) }} as delivery_rank
    from deliveries
),

final as (
    select
        setl_id,
        feedetl_sn,
        mdtrt_id,
        psn_no,
        fee_ocur_time,
        hilist_code,
        hilist_name,
        med_chrgitm_type,
        chrgitm_lv,
        cnt,
        pric,
        det_item_fee_sumamt,
        selfpay_prop,
        bilg_dr_codg,
        fixmedins_code,
        batch_path,
        line_no,
        batch_processed_at
    from ranked
    where delivery_rank = 1
)

select * from final
