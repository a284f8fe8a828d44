-- The counts are read twice below, each time from the table (DuckDB materialises a CTE
-- referenced more than once).
with population as (
    select * from {{ ref('stg_stats__population') }}
),

regions as (
    select * from {{ ref('regions') }}
),

insutypes as (
    select * from {{ ref('insutypes') }}
),

rollup as (
    select * from {{ ref('int_admdvs_rollup') }}
),

-- Every enrollment counts in its pooling region and in each region above it.
by_type as (
    select
        period,
        insutype,
        insuplc_admdvs,
        enrollments,
        primary_enrollments,
        duplicate_enrollments
    from {{ ref('int_coverage_at_month_end') }}
),

with_all as (
    select * from by_type
    union all
    -- `all`: the two basic schemes together, ranked across both (the month ends rank
    -- within the scheme group, so a person in 310 and 390 is primary in one of them).
    select
        period,
        'all' as insutype,
        insuplc_admdvs,
        enrollments,
        primary_enrollments,
        duplicate_enrollments
    from {{ ref('int_coverage_at_month_end') }}
    where scheme_group = 'basic'
),

rolled_up as (
    select
        with_all.period,
        with_all.insutype,
        with_all.enrollments,
        with_all.primary_enrollments,
        with_all.duplicate_enrollments,
        rollup.admdvs
    from with_all
    inner join rollup
        on rollup.source_admdvs = with_all.insuplc_admdvs
),

counted as (
    select
        period,
        admdvs,
        insutype,
        cast(sum(enrollments) as bigint) as enrollments,
        cast(sum(primary_enrollments) as bigint) as insured_persons,
        cast(sum(duplicate_enrollments) as bigint) as duplicate_enrollments
    from rolled_up
    group by period, admdvs, insutype
),

-- Population as delivered for the finest regions, summed upwards where a
-- region has no figure of its own (explicit figures win).
pop_prefecture as (
    select
        year,
        {{ admdvs_prefecture('admdvs') }} as admdvs,
        sum(resident_pop) as resident_pop
    from population
    where {{ admdvs_level('admdvs') }} in ('pooling_region', 'prefecture')
    group by year, {{ admdvs_prefecture('admdvs') }}
),

pop_province as (
    select
        year,
        {{ admdvs_province('admdvs') }} as admdvs,
        sum(resident_pop) as resident_pop
    from pop_prefecture
    group by year, {{ admdvs_province('admdvs') }}
),

pop_national as (
    select
        year,
        '{{ var("national_admdvs") }}' as admdvs,
        sum(resident_pop) as resident_pop
    from pop_province
    group by year
),

pop_all_levels as (
    select
        year,
        admdvs,
        resident_pop,
        0 as precedence
    from population
    union all
    select year, admdvs, resident_pop, 1 from pop_prefecture
    union all
    select year, admdvs, resident_pop, 2 from pop_province
    union all
    select year, admdvs, resident_pop, 3 from pop_national
),

pop_ranked as (
    select
        year,
        admdvs,
        resident_pop,
        row_number() over (partition by year, admdvs order by precedence) as precedence_rank
    from pop_all_levels
),

pop_best as (
    select
        year,
        admdvs,
        resident_pop
    from pop_ranked
    where precedence_rank = 1
),

-- The population of the period's year, else the latest year before it.
with_pop_ranked as (
    select
        counted.*,
        pop_best.resident_pop,
        row_number() over (
            partition by counted.period, counted.admdvs, counted.insutype
            order by pop_best.year desc nulls last
        ) as year_rank
    from counted
    left join pop_best
        on pop_best.admdvs = counted.admdvs
        and pop_best.year <= extract(year from counted.period)
),

with_pop as (
    select * from with_pop_ranked
    where year_rank = 1
),

final as (
    select
        with_pop.period,
        with_pop.admdvs,
        coalesce(regions.level, {{ admdvs_level('with_pop.admdvs') }}) as admdvs_level,
        regions.name_zh as admdvs_name_zh,
        regions.name_en as admdvs_name_en,
        {{ admdvs_province('with_pop.admdvs') }} as province_admdvs,
        provinces.iso_3166_2 as province_iso_3166_2,
        with_pop.insutype,
        insutypes.name_en as insutype_name_en,
        insutypes.name_zh as insutype_name_zh,
        with_pop.enrollments,
        with_pop.insured_persons,
        with_pop.duplicate_enrollments,
        cast(with_pop.resident_pop as bigint) as resident_pop,
        cast(round(with_pop.insured_persons / nullif(with_pop.resident_pop, 0), 6) as double)
            as coverage_rate,
        -- Dashboards show "the latest month" without a sub-query (Superset refuses them).
        with_pop.period = max(with_pop.period) over () as is_latest_period
    from with_pop
    left join regions
        on regions.admdvs = with_pop.admdvs
    left join regions as provinces
        on provinces.admdvs = {{ admdvs_province('with_pop.admdvs') }}
    left join insutypes
        on insutypes.insutype = with_pop.insutype
)

select * from final
