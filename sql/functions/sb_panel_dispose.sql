-- The outcome of an answered call, by the agent who took it, once.  Returns
-- saved | refused (why).
CREATE OR REPLACE FUNCTION sb_panel_dispose(p_agent_id integer, p_uniqueid text, p_code text,
                                 p_note text, OUT outcome text, OUT why text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me  agent := sb_panel_agent_row(p_agent_id);
    v   record;
    v_end timestamptz;
BEGIN
    p_uniqueid := left(p_uniqueid, 150);
    p_note := nullif(btrim(p_note), '');
    why := CASE
        WHEN me.agent_id IS NULL THEN 'no agent'
        WHEN NOT sb_panel_connected(me, p_uniqueid, false) THEN 'not your call'
        WHEN NOT sb_panel_disposition_ok(p_code) THEN 'no such disposition'
        WHEN length(p_note) > 2000 THEN 'note too long (2,000 characters at most)'
        WHEN EXISTS (SELECT 1 FROM call_disposition WHERE uniqueid = p_uniqueid)
             THEN 'already saved'
    END;
    IF why IS NOT NULL THEN
        outcome := 'refused';
        IF me.agent_id IS NOT NULL THEN
            PERFORM sb_audit_append(sb_panel_actor(me), p_uniqueid, NULL, NULL, NULL,
                                    'disposition', 'refused', why);
        END IF;
        RETURN;
    END IF;
    SELECT max(q.ended_at) INTO v_end FROM queue_call q
     WHERE q.uniqueid = p_uniqueid AND q.member_interface = me.interface;
    INSERT INTO call_disposition (uniqueid, agent_id, code, note, call_ended_at, wrapup_s)
    VALUES (p_uniqueid, me.agent_id, p_code, p_note, v_end,
            CASE WHEN v_end IS NULL THEN 0
                 ELSE round(greatest(extract(epoch FROM now() - v_end), 0)::numeric, 1) END);
    v := sb_panel_verification(p_uniqueid);
    PERFORM sb_audit_append(sb_panel_actor(me), p_uniqueid, v.ani, v.agency_code,
                            v.officer_number, 'disposition', p_code,
                            sb_panel_note_detail(p_note));
    outcome := 'saved';
END $$;

REVOKE ALL ON FUNCTION sb_panel_dispose(p_agent_id integer, p_uniqueid text, p_code text, p_note text, OUT outcome text, OUT why text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_dispose(p_agent_id integer, p_uniqueid text, p_code text, p_note text, OUT outcome text, OUT why text) TO sb_panel;
