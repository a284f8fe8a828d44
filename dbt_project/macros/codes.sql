{#- A diagnosis or procedure code as the terminology ranges compare it: upper case,
    no dot, no spaces (`c61.x00` → `C61X00`, `68.1200` → `681200`); null when empty. -#}
{% macro normalise_code(code) -%}
    nullif(upper(replace(replace(trim({{ code }}), '.', ''), ' ', '')), '')
{%- endmacro %}
