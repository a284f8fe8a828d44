{#- A diagnosis or procedure code as the terminology ranges compare it: upper case,
    no dot, no spaces (`c61.x00` → `C61X00`, `68.1200` → `681200`); null when empty. -#}
{% macro normalise_code(code) -%}
    nullif(upper(replace(replace(trim({{ code }}), '.', ''), ' ', '')), '')
{%- endmacro %}

{#- A normalised code falls in a terminology range (dim_code_ranges as `ranges`): its
    prefix of the range's length lies between the range's ends. -#}
{% macro code_in_range(code_norm, ranges) -%}
    substr({{ code_norm }}, 1, {{ ranges }}.code_length) between {{ ranges }}.code_from and {{ ranges }}.code_to
{%- endmacro %}
