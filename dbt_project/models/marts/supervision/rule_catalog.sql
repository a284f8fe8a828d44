{#- The rule knowledge base (规则库) as published: one row per rule, with its
    parameters and the number of hits in the warehouse. -#}
with rules as (
    select * from {{ ref('rule_base') }}
),

hits as (
    select
        rule_id,
        count(*) as hits,
        sum(suspect_amt) as suspect_amt
    from {{ ref('rule_hits') }}
    group by rule_id
),

final as (
    select
        rules.rule_id,
        rules.version,
        rules.name_en,
        rules.name_zh,
        rules.category,
        rules.severity,
        rules.template,
        rules.code_system,
        rules.restriction,
        rules.threshold,
        rules.window_days,
        rules.logic_en,
        rules.logic_zh,
        rules.source,
        coalesce(hits.hits, 0) as hits,
        cast(coalesce(hits.suspect_amt, 0) as decimal(18, 2)) as suspect_amt
    from rules
    left join hits
        on hits.rule_id = rules.rule_id
)

select * from final
