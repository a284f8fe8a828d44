{#- What each fund paid on settlements, by the month the money moved (a reversal in
    the month it arrives: the ledger is kept in cash, not restated), pooling region of
    enrollment and fund. Which settlement amounts each fund pays:
      310_pool  employee settlements: basic pooled fund + large-amount subsidy
      310_acct  employee and maternity settlements: personal account
      390       resident settlements: basic pooled fund + critical-illness insurance
      510       maternity settlements: pooled fund -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='period',
    on_schema_change='append_new_columns'
) }}
with settlements as (
    select * from {{ ref('stg_platform__setl') }}
    {% if is_incremental() %}
    -- Cash months: only those that batches loaded since the last build fall in, and
    -- the months of settlement batches loaded again (from the ledger: a corrected batch
    -- may have dropped settlements, an emptied one leaves no row to find its month by).
    {%- set loaded_since = incremental_watermark('_loaded_at') %}
    where period in (
        select period from {{ ref('stg_platform__setl') }}
        where batch_processed_at > {{ loaded_since }}
        union
        select period from {{ ledger_batches_since('setl', loaded_since, 'period') }} as reloaded
    )
    {% endif %}
),

payments as (
    select period, insuplc_admdvs as admdvs, '310_pool' as fund_type,
        coalesce(hifp_pay, 0) + coalesce(hifob_pay, 0) as paid, batch_processed_at
    from settlements where insutype = '310'
    union all
    select period, insuplc_admdvs, '310_acct', coalesce(acct_pay, 0), batch_processed_at
    from settlements where insutype in ('310', '510')
    union all
    select period, insuplc_admdvs, '390', coalesce(hifp_pay, 0) + coalesce(hifmi_pay, 0),
        batch_processed_at
    from settlements where insutype = '390'
    union all
    select period, insuplc_admdvs, '510', coalesce(hifp_pay, 0), batch_processed_at
    from settlements where insutype = '510'
),

final as (
    select
        period,
        admdvs,
        fund_type,
        count(*) as settlements,
        sum(paid) as fund_paid,
        -- The latest settlement batch this build took in, from the ledger (an emptied
        -- batch leaves no row), so that the next build does not take it in again.
        {{ ledger_latest_batch('setl') }} as _loaded_at
    from payments
    group by period, admdvs, fund_type
)

select * from final
