-- Append one row to its chain (serialised on that chain's audit_head row, locked
-- to the end of the calling transaction, which is short).  Texts are bounded here.
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

REVOKE ALL ON FUNCTION sb_audit_append(p_actor text, p_uniqueid text, p_ani text, p_agency text, p_officer text, p_action text, p_result text, p_detail text) FROM PUBLIC;
