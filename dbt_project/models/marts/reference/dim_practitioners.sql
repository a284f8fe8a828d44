{#- Registered practitioners with their history: one row per version (institution,
    type, validity). -#}
{{ scd2_from_snapshots(
    ref('stg_platform__practitioner'),
    'dr_code',
    ['fixmedins_code', 'dr_type', 'vali_flag']
) }}
