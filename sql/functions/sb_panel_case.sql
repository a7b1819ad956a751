-- A case's details, for the agent connected to a call verified in full or by
-- callback, with the fields the agent's role may see.  Each display is an
-- audit row (who saw which case, for which call); a refusal is one too.
CREATE OR REPLACE FUNCTION sb_panel_case(p_agent_id integer, p_uniqueid text,
    OUT outcome text, OUT case_ref text, OUT case_number text, OUT status text,
    OUT priority text, OUT office text, OUT summary text, OUT sensitive text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me  agent := sb_panel_agent_row(p_agent_id);
    v   record;
    r   case_record;
    v_why text;
BEGIN
    p_uniqueid := left(p_uniqueid, 150);
    IF me.agent_id IS NULL THEN
        outcome := 'refused';
        RETURN;
    END IF;
    v := sb_panel_verification(p_uniqueid);
    r := sb_panel_case_of(p_uniqueid);
    v_why := CASE
        WHEN NOT sb_panel_connected(me, p_uniqueid, false) THEN 'not your call'
        WHEN v.level NOT IN ('full', 'callback') THEN 'verification ' || v.level
        WHEN r.case_id IS NULL THEN 'no case looked up'
    END;
    IF v_why IS NOT NULL THEN
        outcome := 'refused';
        PERFORM sb_audit_append(sb_panel_actor(me), p_uniqueid, v.ani, v.agency_code,
                                v.officer_number, 'disclose', 'refused', v_why);
        RETURN;
    END IF;
    outcome := 'shown'; case_ref := r.ref; case_number := r.case_number;
    status := r.status; priority := r.priority; office := r.office; summary := r.summary;
    IF me.role = 'supervisor' THEN
        sensitive := r.sensitive;
    END IF;
    PERFORM sb_audit_append(sb_panel_actor(me), p_uniqueid, v.ani, v.agency_code,
                            v.officer_number, 'disclose', 'shown',
                            format('%s %s fields=%s', r.ref, me.role,
                                   CASE WHEN me.role = 'supervisor'
                                        THEN 'number,status,priority,office,summary,sensitive'
                                        ELSE 'number,status,priority,office,summary' END));
END $$;

REVOKE ALL ON FUNCTION sb_panel_case(p_agent_id integer, p_uniqueid text, OUT outcome text, OUT case_ref text, OUT case_number text, OUT status text, OUT priority text, OUT office text, OUT summary text, OUT sensitive text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_case(p_agent_id integer, p_uniqueid text, OUT outcome text, OUT case_ref text, OUT case_number text, OUT status text, OUT priority text, OUT office text, OUT summary text, OUT sensitive text) TO sb_panel;
