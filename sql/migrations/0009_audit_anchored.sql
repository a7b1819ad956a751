-- The audit log anchored outside the database (issue 11).
--
-- 1. Every row carries mac = HMAC-SHA256(audit key, its chain hash).  The key
--    is held outside the database, like the PIN pepper: the services that write
--    audit rows (the AGI service, the ops commands) hand it to their own session
--    as the startup setting sb.audit_key; no table and no other session can read
--    it.  A row written without the key (by anyone holding only the database)
--    has no valid MAC, and since the chain hash covers the row before, no row can
--    be edited, removed, swapped or re-hashed without the key.
-- 2. Signed checkpoints of every chain head (chain, seq, hash, time) are written
--    outside the database (`switchboard audit anchor`, and the AGI service every
--    SB_AUDIT_ANCHOR_INTERVAL_S, to SB_AUDIT_ANCHOR_FILE and the journal), so a
--    cut tail, a rolled-back head or a truncated log is caught too.
-- `switchboard audit verify` checks the chain, every MAC and every checkpoint.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

ALTER TABLE audit_log ADD COLUMN mac bytea;

CREATE OR REPLACE FUNCTION sb_audit_append(p_actor text, p_uniqueid text, p_ani text,
                                           p_agency text, p_officer text, p_action text,
                                           p_result text, p_detail text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    h      audit_head;
    v_at   timestamptz := clock_timestamp();
    v_hash bytea;
    v_key  text := current_setting('sb.audit_key', true);
BEGIN
    p_actor := left(p_actor, 100);  p_uniqueid := left(p_uniqueid, 150);
    p_ani := left(p_ani, 40);       p_agency := left(p_agency, 10);
    p_officer := left(p_officer, 12); p_action := left(p_action, 40);
    p_result := left(p_result, 40); p_detail := left(p_detail, 200);
    UPDATE audit_head SET seq = seq + 1
     WHERE chain = coalesce(hashtext(p_uniqueid) & 15, 0)
    RETURNING * INTO h;
    v_hash := sb_audit_digest(h.hash, h.chain, h.seq, v_at, p_actor, p_uniqueid, p_ani,
                              p_agency, p_officer, p_action, p_result, p_detail);
    INSERT INTO audit_log (chain, seq, at, actor, uniqueid, ani, agency, officer, action,
                           result, detail, prev_hash, hash, mac)
    VALUES (h.chain, h.seq, v_at, p_actor, p_uniqueid, p_ani, p_agency, p_officer, p_action,
            p_result, p_detail, h.hash, v_hash,
            CASE WHEN v_key ~ '^[0-9a-f]{64}$'
                 THEN hmac(v_hash, decode(v_key, 'hex'), 'sha256') END);
    UPDATE audit_head SET hash = v_hash WHERE chain = h.chain;
    RETURN h.seq;
END $$;

-- The chain heads, for the AGI service's checkpoints (it cannot read the tables).
CREATE FUNCTION sb_audit_heads()
RETURNS TABLE (chain smallint, seq bigint, hash bytea)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT chain, seq, hash FROM audit_head ORDER BY chain
$$;
REVOKE ALL ON FUNCTION sb_audit_heads() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_audit_heads() TO sb_agi;
