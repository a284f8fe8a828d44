{#- GB/T 2260 hierarchy read off the code itself: AABBCC = province AA, prefecture AABB.
    BB = 90 marks a county-level unit directly under the province (省直辖县级, e.g.
    419001 济源, 469002 琼海): it has no prefecture above it and stands at that rank. -#}
{% macro admdvs_prefecture(code) -%}
    case
        when substr({{ code }}, 3, 2) = '90' then {{ code }}
        else substr({{ code }}, 1, 4) || '00'
    end
{%- endmacro %}

{% macro admdvs_province(code) -%}
    substr({{ code }}, 1, 2) || '0000'
{%- endmacro %}

{% macro admdvs_level(code) -%}
    case
        when {{ code }} = '{{ var("national_admdvs") }}' then 'national'
        when substr({{ code }}, 3, 4) = '0000' then 'province'
        when substr({{ code }}, 5, 2) = '00' or substr({{ code }}, 3, 2) = '90' then 'prefecture'
        else 'pooling_region'
    end
{%- endmacro %}

{#- The amount columns of a settlement (yuan): summed, netted and reconciled alike. -#}
{% macro settlement_amounts() -%}
    {{ return([
        'medfee_sumamt', 'fulamt_ownpay_amt', 'overlmt_selfpay', 'preselfpay_amt',
        'inscp_scp_amt', 'act_pay_dedc', 'hifp_pay', 'cvlserv_pay', 'hifes_pay', 'hifmi_pay',
        'hifob_pay', 'maf_pay', 'oth_pay', 'fund_pay_sumamt', 'psn_part_amt', 'acct_pay',
        'psn_cash_pay', 'hosp_part_amt', 'acct_mulaid_pay'
    ]) }}
{%- endmacro %}
