{#- Persons' enrollment history (SCD2), as coverage counts it (int_enrollment_history). -#}
with history as (
    select * from {{ ref('int_enrollment_history') }}
),

final as (
    select * from history
)

select * from final
