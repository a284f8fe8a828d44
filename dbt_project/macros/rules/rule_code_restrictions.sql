{#- Each settlement's diagnosis and procedure matched against the restricted ranges of
    the terminology (sex- and age-specific chapters, blocks and categories). A code
    matches a range when its prefix of the range's length lies between the range's
    ends, so `C61`, `C61.x00` and `C61X00` all fall in C60-C63.

    A macro over `settlements`, not a model: int_rule_hits matches the settlements it
    rebuilds only (a table of all matches cost 3-4 s a build at `medium`, whatever the
    build added). Reads the relation in each branch, never through a CTE read twice
    (DuckDB would copy every settlement first). -#}
{% macro rule_code_restrictions(settlements) -%}
select
    codes.setl_id,
    codes.code_system,
    codes.code,
    ranges.range_id,
    ranges.restriction,
    ranges.sex,
    ranges.age_min,
    ranges.age_max
from (
    select
        setl_id,
        'diagnosis' as code_system,
        diag_code as code,
        diag_norm as code_norm
    from {{ settlements }}
    where diag_norm is not null
    union all
    select
        setl_id,
        'procedure',
        oprn_oprt_code,
        oprn_norm
    from {{ settlements }}
    where oprn_norm is not null
) as codes
inner join (
    select * from {{ ref('dim_code_ranges') }}
    where restriction is not null
) as ranges
    on ranges.code_system = codes.code_system
    and {{ code_in_range('codes.code_norm', 'ranges') }}
{%- endmacro %}
