{#- Settlements and reversals as delivered, typed and keyed on the person pseudonym.
    A settlement id delivered twice (in two batches) keeps its latest delivery. The SQL
    is the macro staged_setl (macros/staged_setl.sql): the netting's incremental build
    runs it on the settlements it redoes only. -#}
{{ staged_setl() }}
