{#- One row per settlement × rule that fired (per enrollment for enrollment rules):
    the rule base (seeds/rules/rule_base.csv) compiled into one query by the template
    macros (macros/rules/), so a new rule is a row, not a model. The hits are built,
    incrementally, by int_rule_hits; this is what regulators and analysts read. -#}
select
    {%- for column in rule_hit_columns() %}
    {{ column }}{{ "," if not loop.last }}
    {%- endfor %}
from {{ ref('int_rule_hits') }}
