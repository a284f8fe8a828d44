{#- Designated institutions with their history: one row per version, a new version
    whenever a monthly snapshot changes an attribute (agreement ended, level, ...). -#}
{{ scd2_from_snapshots(
    ref('stg_platform__fixmedins'),
    'fixmedins_code',
    ['fixmedins_name', 'fixmedins_type', 'hosp_lv', 'admdvs', 'agmt_begndate',
     'agmt_enddate', 'vali_flag']
) }}
