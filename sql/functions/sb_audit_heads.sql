-- The chain heads, for the AGI service's checkpoints (it cannot read the tables).
CREATE OR REPLACE FUNCTION sb_audit_heads()
RETURNS TABLE (chain smallint, seq bigint, hash bytea)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT chain, seq, hash FROM audit_head ORDER BY chain
$$;

REVOKE ALL ON FUNCTION sb_audit_heads() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_audit_heads() TO sb_agi;
