-- outcome: stored | duplicate (already stored for this call) | no-number
-- (withheld or unusable caller ID: nobody to call back).
CREATE OR REPLACE FUNCTION sb_agi_callback(p_uniqueid text, p_ani text, p_case_ref text)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_outcome text;
BEGIN
    IF p_ani IS NULL OR p_ani !~ '^\+[1-9][0-9]{6,14}$' THEN
        v_outcome := 'no-number';
    ELSE
        INSERT INTO callback_request (uniqueid, ani, case_ref)
        VALUES (left(p_uniqueid, 150), p_ani,
                CASE WHEN p_case_ref ~ '^C[0-9A-F]{12}$' THEN p_case_ref END)
        ON CONFLICT (uniqueid) DO NOTHING;
        v_outcome := CASE WHEN FOUND THEN 'stored' ELSE 'duplicate' END;
    END IF;
    PERFORM sb_audit_append('agi', p_uniqueid, p_ani, NULL, NULL, 'callback', v_outcome,
                            CASE WHEN p_case_ref ~ '^C[0-9A-F]{12}$' THEN p_case_ref END);
    RETURN v_outcome;
END $$;

REVOKE ALL ON FUNCTION sb_agi_callback(p_uniqueid text, p_ani text, p_case_ref text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_agi_callback(p_uniqueid text, p_ani text, p_case_ref text) TO sb_agi;
