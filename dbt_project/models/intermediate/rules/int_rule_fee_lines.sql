{#- Fee lines of the settlements the rule base judges, with their catalogue entry
    (null when the code is unknown) and the share the fund bore.

    Incremental by month of the settlement: the lines of the months int_rule_settlements
    rebuilt since this model last ran. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='period',
    on_schema_change='append_new_columns'
) }}
with lines as (
    select * from {{ ref('stg_platform__fee_list') }}
),

settlements as (
    select * from {{ ref('int_rule_settlements') }}
    {% if is_incremental() %}
    where _built_at > {{ incremental_watermark('_source_built_at') }}
    {% endif %}
),

catalogue as (
    select * from {{ ref('dim_catalogue') }}
),

final as (
    select
        settlements.period,
        lines.setl_id,
        lines.feedetl_sn,
        settlements.person_key,
        coalesce(cast(lines.fee_ocur_time as date), settlements.enddate) as service_date,
        lines.hilist_code,
        catalogue.hilist_code is not null as in_catalogue,
        catalogue.chrgitm_lv as catalogue_class,
        catalogue.item_flag,
        coalesce(catalogue.is_excluded, false) as is_excluded,
        lines.cnt,
        lines.pric,
        lines.det_item_fee_sumamt,
        lines.selfpay_prop,
        -- The part of the line the fund bore: what the person did not pay themselves.
        lines.det_item_fee_sumamt * (1 - coalesce(lines.selfpay_prop, 0)) as fund_share_amt,
        settlements._built_at as _source_built_at,
        {{ run_timestamp() }} as _built_at
    from lines
    inner join settlements
        on settlements.setl_id = lines.setl_id
    left join catalogue
        on catalogue.hilist_code = lines.hilist_code
)

select * from final
