{#- Fee detail lines as delivered, typed; a line (setl_id × feedetl_sn) delivered twice
    keeps its latest delivery, like its settlement. -#}
with source as (
    select * from {{ source('raw', 'fee_list') }}
),

latest as (
    select
        *,
        row_number() over (
            partition by setl_id, feedetl_sn
            order by _batch_path desc, _line_no desc
        ) as delivery_rank
    from source
),

renamed as (
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
        _batch_path as batch_path,
        _line_no as line_no
    from latest
    where delivery_rank = 1
)

select * from renamed
