with source as (
    select * from {{ source('raw', 'psn_insu') }}
),

batches as (
    select * from {{ source('ops', 'batches') }}
),

renamed as (
    select
        -- A person is the same person wherever enrolled: join on the certificate's
        -- pseudonym; without a certificate, the person number is all we have.
        {{ person_key('certno_hmac', 'psn_no') }} as person_key,
        psn_no,
        psn_cert_type,
        gend,
        brdy,
        insutype,
        psn_type,
        psn_insu_stas,
        psn_insu_date,
        paus_insu_date,
        insuplc_admdvs,
        updt_time,
        source._batch_path as batch_path,
        source._line_no as line_no,
        -- When its batch was loaded: what incremental models downstream go by.
        batches.processed_at as batch_processed_at
    from source
    left join batches
        on batches.path = source._batch_path
)

select * from renamed
