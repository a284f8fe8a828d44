{#- One row per settlement, net of every reversal that points at it, in the month of
    the settlement: a reversal arriving months later changes the month it reverses,
    not the month it arrives. Reversals of settlements we do not hold stay in their own
    month, so that totals still net.

    Incremental by settlement: a build redoes only the settlements that batches loaded
    since the last build touch (their own, the ones their reversals reverse, orphan
    reversals whose original arrives, and every row of a batch delivered again), not
    whole months: a late reversal of a January settlement rebuilds that one row of
    January. A settlement a corrected batch no longer holds (or an orphan reversal that
    found its original) stays as a withdrawn row (is_withdrawn, never effective) so
    that models downstream see its month change; a full refresh drops such rows. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='direct_delete_insert',
    unique_key='setl_id',
    on_schema_change='append_new_columns',
    pre_hook="{{ common_subplans(false) }}",
    post_hook="{{ common_subplans(true) }}"
) }}
{%- set amounts = settlement_amounts() %}
{%- set incremental = is_incremental_with(['is_withdrawn', '_batch_path']) %}
{%- if incremental %}{% set loaded_since = incremental_watermark('_loaded_at') %}{% endif %}
-- depends_on: {{ source('raw', 'setl') }}
with med_types as (
    select * from {{ ref('med_types') }}
),

{% if incremental %}
{#- What changed is found on the narrow columns of the raw deliveries, and the wide rows
    are staged for the settlements redone only: staging every delivery first (the
    view's deduplication groups all 5.5 million at `medium`, twice) cost more than the
    rest of the build when a month was added. Keys read here are not deduplicated: a
    settlement delivered twice may be redone for nothing, never missed. #}
-- The settlement batches loaded since, new or delivered again (from the ledger: a batch
-- sent again with every record removed has no rows).
loaded_batches as (
    select path from {{ ledger_batches_since('setl', loaded_since) }} as reloaded
),

new_rows as (
    select
        setl_id,
        init_setl_id,
        {{ setl_is_reversal('raw') }} as is_reversal
    from {{ source('raw', 'setl') }} as raw
    where _batch_path in (select path from loaded_batches)
),

held as (
    select
        setl_id,
        _batch_path,
        reversals,
        is_orphan_reversal
    from {{ this }}
    where not is_withdrawn
),

-- The keys of this model (a settlement's id, or an orphan reversal's own id) whose row
-- may differ from the one held. These key lists feed only `in` and `except`, which
-- ignore repeats: `union all`, not `union`, which hashed the month's 1.7 million new
-- keys once more in each of the three at `medium`.
changed as (
    select setl_id from new_rows
    union all
    select init_setl_id from new_rows
    where is_reversal and init_setl_id is not null
    union all
    -- Reversals held as orphans whose original has just arrived.
    select raw.setl_id
    from {{ source('raw', 'setl') }} as raw
    where raw.init_setl_id in (select setl_id from new_rows where not is_reversal)
    union all
    -- Every row of a batch delivered again: a corrected batch may have dropped it.
    select held.setl_id
    from held
    where held._batch_path in (select path from loaded_batches)
    union all
    -- Settlements whose reversals changed in number (a reversal withdrawn).
    select held.setl_id
    from held
    left join (
        select init_setl_id, count(distinct setl_id) as reversals
        from {{ source('raw', 'setl') }} as raw
        where raw.init_setl_id is not null
            and {{ setl_is_reversal('raw') }}
        group by init_setl_id
    ) as counted
        on counted.init_setl_id = held.setl_id
    where not held.is_orphan_reversal
        and held.reversals <> coalesce(counted.reversals, 0)
),

-- The changed keys and what any delivery of them reverses ...
reversed as (
    select setl_id from changed
    union all
    select init_setl_id
    from {{ source('raw', 'setl') }}
    where init_setl_id is not null
        and setl_id in (select setl_id from changed)
),

-- ... and every delivery reversing one of those: each settlement staged comes with all
-- its reversals, so it can be netted again whatever brought it in.
staged_ids as (
    select setl_id from reversed
    union all
    select setl_id
    from {{ source('raw', 'setl') }}
    where init_setl_id is not null
        and init_setl_id in (select setl_id from reversed)
),

-- Wide rows: the settlements to build, their reversals and what those reverse.
settlements as (
    {{ staged_setl('select setl_id from staged_ids') | indent(4) }}
),

all_originals as (
    select setl_id from settlements
    where not is_reversal
),
{% else %}
settlements as (
    select * from {{ ref('stg_platform__setl') }}
),

-- Read again, narrow: DuckDB would materialise a wide CTE read from many places.
all_originals as (
    select setl_id from {{ ref('stg_platform__setl') }}
    where not is_reversal
),
{% endif %}

originals as (
    select * from settlements
    where not is_reversal
),

reversals as (
    select * from settlements
    where is_reversal
),

reversal_totals as (
    select
        init_setl_id as setl_id,
        count(*) as reversals,
        max(setl_time) as last_reversed_at,
        max(batch_processed_at) as last_loaded_at,
        {%- for col in amounts %}
        sum({{ col }}) as {{ col }}{{ "," if not loop.last }}
        {%- endfor %}
    from reversals
    where init_setl_id is not null
    group by init_setl_id
),

netted as (
    select
        originals.setl_id,
        originals.mdtrt_id,
        originals.person_key,
        originals.psn_no,
        originals.gend,
        originals.brdy,
        originals.insutype,
        originals.med_type,
        originals.begndate,
        originals.enddate,
        originals.setl_time,
        originals.period,
        originals.fixmedins_code,
        originals.atddr_no,
        originals.diag_code,
        originals.oprn_oprt_code,
        originals.insuplc_admdvs,
        originals.mdtrtarea_admvs,
        originals.insured_province,
        originals.treatment_province,
        originals.drg_dip_code,
        {%- for col in amounts %}
        originals.{{ col }} + coalesce(reversal_totals.{{ col }}, 0) as {{ col }},
        {%- endfor %}
        coalesce(reversal_totals.reversals, 0) as reversals,
        reversal_totals.last_reversed_at,
        false as is_orphan_reversal,
        greatest(originals.batch_processed_at, coalesce(reversal_totals.last_loaded_at,
            originals.batch_processed_at)) as _loaded_at,
        originals.batch_path as _batch_path
    from originals
    left join reversal_totals
        on reversal_totals.setl_id = originals.setl_id
),

{% if incremental %}
-- The reversals staged without their original ...
orphan_keys as (
    select reversals.setl_id, reversals.init_setl_id
    from reversals
    left join all_originals
        on all_originals.setl_id = reversals.init_setl_id
    where all_originals.setl_id is null
),

-- ... that changed, or whose original changed (a corrected batch that dropped the
-- original leaves its reversal on its own again). Joined, so that DuckDB builds its
-- hash table on the few orphans: `in (select ... from changed)` built one on every
-- changed key, twice (1.3 s of CPU when a month was added at `medium`, for no row).
rebuilt_orphans as (
    select orphan_keys.setl_id
    from orphan_keys
    inner join changed
        on changed.setl_id = orphan_keys.setl_id
    union all
    select orphan_keys.setl_id
    from orphan_keys
    inner join changed
        on changed.setl_id = orphan_keys.init_setl_id
),
{% endif %}

orphans as (
    select
        reversals.setl_id,
        reversals.mdtrt_id,
        reversals.person_key,
        reversals.psn_no,
        reversals.gend,
        reversals.brdy,
        reversals.insutype,
        reversals.med_type,
        reversals.begndate,
        reversals.enddate,
        reversals.setl_time,
        reversals.period,
        reversals.fixmedins_code,
        reversals.atddr_no,
        reversals.diag_code,
        reversals.oprn_oprt_code,
        reversals.insuplc_admdvs,
        reversals.mdtrtarea_admvs,
        reversals.insured_province,
        reversals.treatment_province,
        reversals.drg_dip_code,
        {%- for col in amounts %}
        reversals.{{ col }},
        {%- endfor %}
        1 as reversals,
        reversals.setl_time as last_reversed_at,
        true as is_orphan_reversal,
        reversals.batch_processed_at as _loaded_at,
        reversals.batch_path as _batch_path
    from reversals
    {% if incremental %}
    -- The orphans to redo, found above among the orphans (orphan_keys).
    where reversals.setl_id in (select setl_id from rebuilt_orphans)
    {% else %}
    left join all_originals
        on all_originals.setl_id = reversals.init_setl_id
    where all_originals.setl_id is null
    {% endif %}
),

unioned as (
    select * from netted
    union all
    select * from orphans
),

built as (
    select
        unioned.*,
        med_types.visit_class,
        coalesce(med_types.is_inpatient, false) as is_inpatient,
        unioned.insured_province <> unioned.treatment_province as is_cross_province,
        -- Counted as a settlement unless reversed in full (or a reversal on its own).
        not unioned.is_orphan_reversal
            and not (unioned.reversals > 0 and unioned.medfee_sumamt = 0) as is_effective,
        false as is_withdrawn,
        case
            when coalesce(med_types.is_inpatient, false)
                then greatest({{ dbt.datediff('unioned.begndate', 'unioned.enddate', 'day') }}, 1)
        end as length_of_stay,
        {{ run_timestamp() }} as _built_at
    from unioned
    left join med_types
        on med_types.med_type = unioned.med_type
),

{%- set columns = [
    'setl_id', 'mdtrt_id', 'person_key', 'psn_no', 'gend', 'brdy', 'insutype', 'med_type',
    'begndate', 'enddate', 'setl_time', 'period', 'fixmedins_code', 'atddr_no', 'diag_code',
    'oprn_oprt_code', 'insuplc_admdvs', 'mdtrtarea_admvs', 'insured_province',
    'treatment_province', 'drg_dip_code'] + amounts + [
    'reversals', 'last_reversed_at', 'is_orphan_reversal', '_loaded_at', '_batch_path',
    'visit_class', 'is_inpatient', 'is_cross_province', 'is_effective', 'is_withdrawn',
    'length_of_stay', '_built_at'] %}

final as (
    select
        {%- for col in columns %}
        {{ col }}{{ "," if not loop.last }}
        {%- endfor %}
    from built
    {% if incremental %}
    union all
    -- Held rows of changed keys that are no longer built: kept as withdrawn.
    select
        {%- for col in columns %}
        {%- if col == 'is_effective' %}
        false as is_effective,
        {%- elif col == 'is_withdrawn' %}
        true as is_withdrawn,
        {%- elif col == '_built_at' %}
        {{ run_timestamp() }} as _built_at
        {%- else %}
        held.{{ col }},
        {%- endif %}
        {%- endfor %}
    -- Not built again: neither a settlement held in staging nor an orphan reversal,
    -- decided on keys alone (`built` itself would be computed a second time), and the
    -- held rows read wide only once found (macro rows_where: a join of every held row
    -- cost 3 s, a filter on them 0.4 s, for rows that are none in most builds).
    from {{ rows_where(this, "not is_withdrawn and setl_id in (
            select setl_id from changed
            except
            select setl_id from all_originals
            except
            select setl_id from orphan_keys
        )") }} as held
    {% endif %}
)

select * from final
