CREATE OR REPLACE FUNCTION sb_audit_digest(prev bytea, chain smallint, seq bigint, at timestamptz,
                                actor text, uniqueid text, ani text, agency text,
                                officer text, action text, result text, detail text)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- %L writes NULL for a null and a quoted literal otherwise: unambiguous.
    SELECT sha256(prev || convert_to(format('%s|%s|%s|%L|%L|%L|%L|%L|%L|%L|%L',
        chain, seq, extract(epoch FROM at)::numeric(20, 6), actor, uniqueid, ani, agency,
        officer, action, result, detail), 'UTF8'))
$$;
