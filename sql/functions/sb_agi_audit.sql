-- The service's other verification rows (a hang-up, an error, a shed attempt)
-- carry the caller-ID evidence too.
CREATE OR REPLACE FUNCTION sb_agi_audit(p_uniqueid text, p_ani text, p_action text,
                                        p_result text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF p_action NOT IN ('verify', 'lookup')
       OR p_result NOT IN ('hangup', 'not-verified', 'error', 'shed') THEN
        RAISE EXCEPTION 'sb_agi_audit: % % not allowed', p_action, p_result;
    END IF;
    RETURN sb_audit_append('agi', p_uniqueid, p_ani, NULL, NULL, p_action, p_result,
                           CASE WHEN p_action = 'verify'
                                THEN sb_caller_id_detail(left(p_uniqueid, 150)) END);
END $$;

REVOKE ALL ON FUNCTION sb_agi_audit(p_uniqueid text, p_ani text, p_action text, p_result text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_agi_audit(p_uniqueid text, p_ani text, p_action text, p_result text) TO sb_agi;
