{#- Rank of a delivered row among the deliveries of the same `keys`: 1 for the latest
    (the last batch path, then the last line), the one staging keeps. Raw tables name
    the batch and line `_batch_path` and `_line_no`; staging drops the underscore. -#}
{% macro latest_delivery_rank(keys, batch_path='batch_path', line_no='line_no') -%}
    row_number() over (
        partition by {{ keys | join(', ') }}
        order by {{ batch_path }} desc, {{ line_no }} desc
    )
{%- endmacro %}

{#- Whether a delivered settlement row is a reversal: it says so with its flag or by
    pointing at what it reverses (columns of raw.setl, under `alias`). -#}
{% macro setl_is_reversal(alias) -%}
    (coalesce({{ alias }}.refd_setl_flag = '1', false) or {{ alias }}.init_setl_id is not null)
{%- endmacro %}
