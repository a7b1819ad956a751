CREATE OR REPLACE FUNCTION sb_audit_genesis(chain smallint) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sha256(convert_to('switchboard audit genesis ' || chain, 'UTF8'))
$$;
