{#- Persons are joined on a key: the pseudonym of their certificate number, computed at
    ingestion (HMAC-SHA256 truncated to 124 bits, a positive integer), or, for a person
    sent without a certificate number, a hash of their person number in the negative
    range, so the two kinds never meet. An integer, not 64 hex characters: every model
    that sorts, joins or counts persons compares 16 bytes in place instead of a text
    stored out of line (at `medium` the enrollment history and month ends took 5 s
    less). Dispatched: the type and the hash are the engine's. -#}
{% macro person_key(certno_pseudonym, psn_no) -%}
    {{ return(adapter.dispatch('person_key', 'yibao')(certno_pseudonym, psn_no)) }}
{%- endmacro %}

{% macro default__person_key(certno_pseudonym, psn_no) -%}
    {{ exceptions.raise_compiler_error("person_key: write " ~ adapter.type() ~ "__person_key (macros/person_key.sql)") }}
{%- endmacro %}

{% macro duckdb__person_key(certno_pseudonym, psn_no) -%}
    coalesce(
        {{ certno_pseudonym }},
        -cast('0x' || left(sha256('psn_no:' || {{ psn_no }}), 31) as {{ type_person_key() }})
    )
{%- endmacro %}

{#- Spark: conv() stops at 64 bits, so the 31 hex digits are read as 15 + 16 (written
    for a Spark deployment, not run here). -#}
{% macro spark__person_key(certno_pseudonym, psn_no) -%}
    coalesce(
        {{ certno_pseudonym }},
        -(cast(conv(substr(sha2(concat('psn_no:', {{ psn_no }}), 256), 1, 15), 16, 10) as decimal(38, 0))
          * cast(18446744073709551616 as decimal(38, 0))
          + cast(conv(substr(sha2(concat('psn_no:', {{ psn_no }}), 256), 16, 16), 16, 10) as decimal(38, 0)))
    )
{%- endmacro %}

{#- The type of a person key: a 128-bit integer where the engine has one. -#}
{% macro type_person_key() -%}
    {{ return(adapter.dispatch('type_person_key', 'yibao')()) }}
{%- endmacro %}

{% macro default__type_person_key() -%}
    decimal(38, 0)
{%- endmacro %}

{% macro duckdb__type_person_key() -%}
    hugeint
{%- endmacro %}
