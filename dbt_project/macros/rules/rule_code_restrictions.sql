{#- Each settlement's diagnosis and procedure matched against the restricted ranges of
    the terminology (sex- and age-specific chapters, blocks and categories). A code
    matches a range when its prefix of the range's length lies between the range's
    ends, so `C61`, `C61.x00` and `C61X00` all fall in C60-C63.

    A macro over `settlements`, not a model: int_rule_hits matches the settlements it
    rebuilds only (a table of all matches cost 3-4 s a build at `medium`, whatever the
    build added). Reads the relation in each branch, never through a CTE read twice
    (DuckDB would copy every settlement first).

    The ranges are matched on the distinct codes, then joined back to the settlements on
    the code: a range is a between, not an equality, so matching every settlement compared
    each code with every range of its system (3.3 s of a month added at `medium`). -#}
{% macro rule_code_restrictions(settlements) -%}
select
    codes.setl_id,
    codes.code_system,
    codes.code,
    matched.range_id,
    matched.restriction,
    matched.sex,
    matched.age_min,
    matched.age_max
from ({{ rule_settlement_codes(settlements) }}) as codes
inner join (
    select
        distinct_codes.code_system,
        distinct_codes.code_norm,
        ranges.range_id,
        ranges.restriction,
        ranges.sex,
        ranges.age_min,
        ranges.age_max
    from (
        select distinct code_system, code_norm
        from ({{ rule_settlement_codes(settlements) }}) as all_codes
    ) as distinct_codes
    inner join (
        select * from {{ ref('dim_code_ranges') }}
        where restriction is not null
    ) as ranges
        on ranges.code_system = distinct_codes.code_system
        and {{ code_in_range('distinct_codes.code_norm', 'ranges') }}
) as matched
    on matched.code_system = codes.code_system
    and matched.code_norm = codes.code_norm
{%- endmacro %}

{#- A settlement's diagnosis and procedure, one row each (normalised code beside). -#}
{% macro rule_settlement_codes(settlements) -%}
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
{%- endmacro %}
