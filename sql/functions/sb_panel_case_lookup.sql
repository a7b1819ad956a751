-- A case lookup from the panel, for a call verified by callback (the caller's
-- own lookup in the IVR needs a PIN verification): the agent types the case
-- number the caller gives; the same limit as the IVR's (lookup_max per call).
CREATE OR REPLACE FUNCTION sb_panel_case_lookup(p_agent_id integer, p_uniqueid text,
                                     p_case_number text, OUT outcome text,
                                     OUT case_ref text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me  agent := sb_panel_agent_row(p_agent_id);
    v   record;
    v_n integer;
    v_why text;
BEGIN
    p_uniqueid := left(p_uniqueid, 150);
    IF me.agent_id IS NULL THEN
        outcome := 'refused';
        RETURN;
    END IF;
    v := sb_panel_verification(p_uniqueid);
    SELECT count(*) INTO v_n FROM audit_log l
     WHERE l.uniqueid = p_uniqueid AND l.action = 'lookup' AND l.actor LIKE 'agent:%';
    v_why := CASE
        WHEN NOT sb_panel_connected(me, p_uniqueid, true) THEN 'not your call'
        WHEN v.level NOT IN ('full', 'callback') THEN 'verification ' || v.level
        WHEN v_n >= (SELECT lookup_max FROM verify_policy) THEN 'too many lookups'
        WHEN p_case_number IS NULL OR p_case_number !~ '^[0-9]{6,12}$' THEN 'malformed'
    END;
    IF v_why IS NOT NULL THEN
        outcome := 'refused';
        PERFORM sb_audit_append(sb_panel_actor(me), p_uniqueid, v.ani, v.agency_code,
                                v.officer_number, 'lookup', 'refused', v_why);
        RETURN;
    END IF;
    SELECT c.ref INTO case_ref FROM case_record c WHERE c.case_number = p_case_number;
    outcome := CASE WHEN FOUND THEN 'found' ELSE 'not-found' END;
    PERFORM sb_audit_append(sb_panel_actor(me), p_uniqueid, v.ani, v.agency_code,
                            v.officer_number, 'lookup', outcome, case_ref);
END $$;

REVOKE ALL ON FUNCTION sb_panel_case_lookup(p_agent_id integer, p_uniqueid text, p_case_number text, OUT outcome text, OUT case_ref text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_case_lookup(p_agent_id integer, p_uniqueid text, p_case_number text, OUT outcome text, OUT case_ref text) TO sb_panel;
