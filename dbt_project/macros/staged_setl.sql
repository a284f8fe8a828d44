{#- The settlements and reversals as delivered, typed and keyed on the person
    pseudonym, the latest delivery of each settlement id: the body of
    stg_platform__setl. `ids`, a query of settlement ids, restricts it to the
    deliveries of those ids (all of them, so the latest is still the one kept): the
    netting's incremental build reads the settlements it redoes without deduplicating
    every delivery first. -#}
{% macro staged_setl(ids=none) -%}
{%- set only = ("where setl_id in (" ~ ids ~ ")") if ids else "" %}
with source as (
    select * from {{ source('raw', 'setl') }}
    {{ only }}
),

batches as (
    select * from {{ source('ops', 'batches') }}
),

-- A settlement id delivered more than once keeps its latest delivery (last batch path,
-- then last line). Duplicates are rare, so only their deliveries are ranked and the
-- losers taken out: ranking every row sorted 5.5 million wide rows at `medium` (10 s
-- against 4). These read the raw table, not `source`: DuckDB materialises a CTE
-- referenced more than once, a copy of every wide row in each model reading this view.
duplicated as (
    select setl_id
    from {{ source('raw', 'setl') }}
    {{ only }}
    group by setl_id
    having count(*) > 1
),

superseded as (
    select _batch_path, _line_no
    from (
        select
            _batch_path,
            _line_no,
            {{ latest_delivery_rank(['setl_id'], '_batch_path', '_line_no') }} as delivery_rank
        from {{ source('raw', 'setl') }}
        where setl_id in (select setl_id from duplicated)
    ) as ranked
    where delivery_rank > 1
),

latest as (
    select source.*
    from source
    left join superseded
        on superseded._batch_path = source._batch_path
        and superseded._line_no = source._line_no
    where superseded._batch_path is null
),

renamed as (
    select
        setl_id,
        mdtrt_id,
        psn_no,
        {{ person_key('certno_hmac', 'psn_no') }} as person_key,
        gend,
        brdy,
        insutype,
        med_type,
        begndate,
        enddate,
        setl_time,
        cast({{ dbt.date_trunc('month', 'setl_time') }} as date) as period,
        fixmedins_code,
        atddr_no,
        diag_code,
        oprn_oprt_code,
        insuplc_admdvs,
        mdtrtarea_admvs,
        {{ admdvs_province('insuplc_admdvs') }} as insured_province,
        {{ admdvs_province('mdtrtarea_admvs') }} as treatment_province,
        medfee_sumamt,
        fulamt_ownpay_amt,
        overlmt_selfpay,
        preselfpay_amt,
        inscp_scp_amt,
        act_pay_dedc,
        hifp_pay,
        cvlserv_pay,
        hifes_pay,
        hifmi_pay,
        hifob_pay,
        maf_pay,
        oth_pay,
        fund_pay_sumamt,
        psn_part_amt,
        acct_pay,
        psn_cash_pay,
        hosp_part_amt,
        acct_mulaid_pay,
        {{ setl_is_reversal('latest') }} as is_reversal,
        init_setl_id,
        drg_dip_code,
        clr_type,
        latest._batch_path as batch_path,
        latest._line_no as line_no,
        -- When the door loaded the batch: incremental models rebuild what is newer.
        batches.processed_at as batch_processed_at
    from latest
    left join batches
        on batches.path = latest._batch_path
)

select * from renamed
{%- endmacro %}
