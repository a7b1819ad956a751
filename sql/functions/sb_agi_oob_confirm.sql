-- After the dialplan's Dial: whether the agency answered, then the agent's key
-- (1: confirmed, 2: not), or NULL when no key was pressed.
-- Returns callback | callback-denied | not-reached | refused | no-answer-given.
CREATE OR REPLACE FUNCTION sb_agi_oob_confirm(p_interface text, p_oob_id bigint, p_answered boolean,
                                   p_confirmed boolean)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    a agent;
    c oob_call;
BEGIN
    SELECT * INTO a FROM agent WHERE interface = left(p_interface, 60)
       AND disabled_at IS NULL;
    SELECT * INTO c FROM oob_call WHERE oob_id = p_oob_id;
    IF a.agent_id IS NULL OR c.oob_id IS NULL OR c.agent_id <> a.agent_id THEN
        PERFORM sb_audit_append('agi', c.uniqueid, NULL, NULL, NULL, 'verify', 'refused',
                                format('desk-phone mark for oob %s', p_oob_id));
        RETURN 'refused';
    END IF;
    PERFORM sb_panel_oob_result(p_oob_id, CASE WHEN p_answered THEN 'accepted'
                                               ELSE 'failed' END, p_answered);
    IF NOT p_answered THEN
        RETURN 'not-reached';
    END IF;
    IF p_confirmed IS NULL THEN
        RETURN 'no-answer-given';
    END IF;
    RETURN sb_panel_oob_confirm(a.agent_id, p_oob_id, p_confirmed);
END $$;

REVOKE ALL ON FUNCTION sb_agi_oob_confirm(p_interface text, p_oob_id bigint, p_answered boolean, p_confirmed boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_agi_oob_confirm(p_interface text, p_oob_id bigint, p_answered boolean, p_confirmed boolean) TO sb_agi;
