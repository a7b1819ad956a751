-- The verify handler records a call's caller-ID evidence once (a second
-- transport re-running the step finds it there) with an audit row.
CREATE OR REPLACE FUNCTION sb_agi_caller_id(p_uniqueid text, p_ani text, p_source text, p_attest text,
                                 p_result text, p_reason text)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_result text;
BEGIN
    p_uniqueid := left(p_uniqueid, 150); p_ani := left(p_ani, 40);
    IF p_reason IS NOT NULL AND p_reason !~ '^[A-Za-z0-9_.-]{1,40}$' THEN
        p_reason := NULL;
    END IF;
    INSERT INTO caller_id_check (uniqueid, ani, source, attest, result, reason)
    VALUES (p_uniqueid, p_ani, p_source, p_attest, p_result, p_reason)
    ON CONFLICT (uniqueid) DO NOTHING
    RETURNING result INTO v_result;
    IF v_result IS NULL THEN
        SELECT result INTO v_result FROM caller_id_check WHERE uniqueid = p_uniqueid;
        RETURN v_result;
    END IF;
    PERFORM sb_audit_append('agi', p_uniqueid, p_ani, NULL, NULL, 'caller-id', p_result,
                            sb_caller_id_detail(p_uniqueid));
    RETURN v_result;
END $$;

REVOKE ALL ON FUNCTION sb_agi_caller_id(p_uniqueid text, p_ani text, p_source text, p_attest text, p_result text, p_reason text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_agi_caller_id(p_uniqueid text, p_ani text, p_source text, p_attest text, p_result text, p_reason text) TO sb_agi;
