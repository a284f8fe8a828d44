{#- Fee lines of the settlements the rule base judges, with their catalogue entry
    (null when the code is unknown) and the share the fund bore.

    Incremental by settlement: the lines of the settlements int_settlements_netted
    rebuilt since this model last ran, of the settlements whose lines came in batches
    loaded since, and of the settlements held with lines from a batch loaded again
    (found from the ledger and each line's batch: a corrected batch may have dropped
    lines, an emptied one has none left). Each such settlement also yields one
    tombstone, so that the strategy (direct_delete_insert) drops the lines held for
    it even when it has none left (reversed in full, withdrawn, its lines' batch
    emptied); tombstones are never written.

    The person is not carried (the one rule needing it joins the settlement): writing
    22 million copies of a 64-character pseudonym took a full build at `medium` from
    12.6 s to 15-19 s, and a pseudonym copied less is better kept. Columns the model no
    longer writes are dropped from a table built before (sync_all_columns). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='direct_delete_insert',
    unique_key='setl_id',
    on_schema_change='sync_all_columns'
) }}
{%- set incremental = is_incremental_with(['_is_tombstone', '_lines_loaded_at', '_batch_path']) %}
-- Every CTE reading the fee-line deliveries reads the view itself: DuckDB materialises
-- a CTE referenced more than once, and an incremental build read all 22 million wide
-- lines at `medium` (6 s) before keeping the third it rebuilds.
with netted as (
    select * from {{ ref('int_settlements_netted') }}
),

catalogue as (
    select * from {{ ref('dim_catalogue') }}
),

{% if incremental %}
changed as (
    select setl_id from netted
    where _built_at > {{ incremental_watermark('_source_built_at') }}
    union
    select setl_id from {{ ref('stg_platform__fee_list_deliveries') }}
    where batch_processed_at > {{ incremental_watermark('_lines_loaded_at') }}
    union
    select setl_id from {{ this }}
    where _batch_path in {{ ledger_batches_since('fee_list', incremental_watermark('_lines_loaded_at')) }}
),
{% endif %}

-- The settlements to build. In an incremental build the lines reach only these through
-- the join in `built`: filtering the lines apart as well made DuckDB misjudge them as
-- few and hash 6.7 million wide lines instead of 1.7 million settlements (2.7 s
-- against 0.8 s at `medium`).
settlements as (
    select * from {{ ref('int_rule_settlements') }}
    {% if incremental %}
    where setl_id in (select setl_id from changed)
    {% endif %}
),

-- Lines of the settlements to build, the latest delivery of each. A line delivered
-- more than once is rare (a batch sent again under another path), so only such lines
-- are ranked and the superseded deliveries taken out: ranking all 22 million lines at
-- `medium` sorted every wide row (15 s against 5). Lines can repeat only in a
-- settlement delivered in more than one batch: found first on the settlement alone
-- (1.7 million groups against 6.8 million lines, 1.3 s against 2.1 s).
resent as (
    select setl_id
    from {{ ref('stg_platform__fee_list_deliveries') }}
    {% if incremental %}
    where setl_id in (select setl_id from changed)
    {% endif %}
    group by setl_id
    having min(batch_path) < max(batch_path)
),

duplicated as (
    select setl_id, feedetl_sn
    from {{ ref('stg_platform__fee_list_deliveries') }}
    where setl_id in (select setl_id from resent)
    group by setl_id, feedetl_sn
    having count(*) > 1
),

superseded as (
    select batch_path, line_no
    from (
        select
            repeated.batch_path,
            repeated.line_no,
            {{ latest_delivery_rank(['repeated.setl_id', 'repeated.feedetl_sn'],
                'repeated.batch_path', 'repeated.line_no') }} as delivery_rank
        from {{ ref('stg_platform__fee_list_deliveries') }} as repeated
        inner join duplicated
            on duplicated.setl_id = repeated.setl_id
            and duplicated.feedetl_sn = repeated.feedetl_sn
    ) as ranked
    where delivery_rank > 1
),

lines as (
    select deliveries.*
    from {{ ref('stg_platform__fee_list_deliveries') }} as deliveries
    left join superseded
        on superseded.batch_path = deliveries.batch_path
        and superseded.line_no = deliveries.line_no
    where superseded.batch_path is null
),

built as (
    select
        settlements.period,
        lines.setl_id,
        lines.feedetl_sn,
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
        false as _is_tombstone,
        lines.batch_processed_at as _lines_loaded_at,
        -- The line's batch: when it is loaded again, its settlements are redone.
        lines.batch_path as _batch_path,
        settlements._source_built_at,
        {{ run_timestamp() }} as _built_at
    from lines
    inner join settlements
        on settlements.setl_id = lines.setl_id
    left join catalogue
        on catalogue.hilist_code = lines.hilist_code
),

final as (
    select * from built
    {% if incremental %}
    union all
    select
        cast(null as date) as period,
        changed.setl_id,
        {#- the remaining columns of `built`, empty -#}
        null, null, null, null, null, null, null, null, null, null, null, null,
        true as _is_tombstone,
        null, null, null, null
    from changed
    {% endif %}
)

select * from final
