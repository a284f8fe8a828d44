{#- GB/T 2260 hierarchy read off the code itself: AABBCC = province AA, prefecture AABB. -#}
{% macro admdvs_prefecture(code) -%}
    substr({{ code }}, 1, 4) || '00'
{%- endmacro %}

{% macro admdvs_province(code) -%}
    substr({{ code }}, 1, 2) || '0000'
{%- endmacro %}

{% macro admdvs_level(code) -%}
    case
        when {{ code }} = '{{ var("national_admdvs") }}' then 'national'
        when substr({{ code }}, 3, 4) = '0000' then 'province'
        when substr({{ code }}, 5, 2) = '00' then 'prefecture'
        else 'pooling_region'
    end
{%- endmacro %}
