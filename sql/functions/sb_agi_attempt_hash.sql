-- The PIN hash of a committed attempt that may see one ('ok'), once it is
-- committed: NULL otherwise (the service then does the same argon2 work on a
-- dummy, so the answer takes as long).
CREATE OR REPLACE FUNCTION sb_agi_attempt_hash(p_attempt_id bigint, p_uniqueid text)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    a verify_attempt;
    v_hash text;
BEGIN
    SELECT * INTO a FROM verify_attempt WHERE attempt_id = p_attempt_id FOR UPDATE;
    IF NOT FOUND OR a.uniqueid IS DISTINCT FROM p_uniqueid OR a.status <> 'ok'
       OR a.finished_at IS NOT NULL OR a.begun_xid = txid_current()
       OR a.started_at < now() - make_interval(secs => (SELECT attempt_ttl_s
                                                         FROM verify_policy)) THEN
        RETURN NULL;
    END IF;
    SELECT pin_hash INTO v_hash FROM officer WHERE officer_id = a.officer_id;
    UPDATE verify_attempt SET hash_given_at = now() WHERE attempt_id = p_attempt_id;
    RETURN v_hash;
END $$;

REVOKE ALL ON FUNCTION sb_agi_attempt_hash(p_attempt_id bigint, p_uniqueid text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_agi_attempt_hash(p_attempt_id bigint, p_uniqueid text) TO sb_agi;
