-- A supervisor asks to listen to an agent's call in progress.  Returns the
-- session and what to ring (the supervisor's phone) and spy on (the agent's
-- interface), or why not.
CREATE OR REPLACE FUNCTION sb_panel_spy_begin(p_agent_id integer, p_uniqueid text, p_mode text)
RETURNS TABLE (outcome text, why text, spy_id bigint, uniqueid text, phone text,
               target text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me  agent := sb_panel_agent_row(p_agent_id);
    tgt agent;
    c   queue_call;
    v_id bigint;
BEGIN
    IF me.agent_id IS NULL OR me.role <> 'supervisor' THEN
        PERFORM sb_audit_append(sb_panel_actor(me), p_uniqueid, NULL, NULL, NULL,
                                'spy-start', 'refused', 'not a supervisor');
        RETURN QUERY SELECT 'refused'::text, 'only supervisors may listen in'::text,
                            NULL::bigint, NULL::text, NULL::text, NULL::text;
        RETURN;
    END IF;
    IF p_mode IS NULL OR p_mode NOT IN ('listen', 'whisper', 'barge') THEN
        RETURN QUERY SELECT 'refused'::text, 'mode is listen, whisper or barge'::text,
                            NULL::bigint, NULL::text, NULL::text, NULL::text;
        RETURN;
    END IF;
    SELECT * INTO c FROM queue_call q
     WHERE q.uniqueid = p_uniqueid AND q.answered_at IS NOT NULL AND q.ended_at IS NULL
     ORDER BY q.answered_at DESC LIMIT 1;
    IF FOUND THEN
        SELECT * INTO tgt FROM agent WHERE interface = c.member_interface
                                       AND disabled_at IS NULL;
    END IF;
    IF c.call_id IS NULL OR tgt.agent_id IS NULL THEN
        RETURN QUERY SELECT 'refused'::text, 'no agent is talking on this call'::text,
                            NULL::bigint, NULL::text, NULL::text, NULL::text;
        RETURN;
    END IF;
    IF tgt.agent_id = me.agent_id THEN
        RETURN QUERY SELECT 'refused'::text, 'this is your own call'::text, NULL::bigint,
                            NULL::text, NULL::text, NULL::text;
        RETURN;
    END IF;
    INSERT INTO spy_session (agent_id, target_id, uniqueid, mode)
    VALUES (me.agent_id, tgt.agent_id, c.uniqueid, p_mode) RETURNING spy_session.spy_id
      INTO v_id;
    PERFORM sb_audit_append(sb_panel_actor(me), c.uniqueid, NULL, NULL, NULL, 'spy-start',
                            'requested', p_mode || ' ' || tgt.login || ' session ' || v_id);
    RETURN QUERY SELECT 'ok'::text, NULL::text, v_id, c.uniqueid, me.interface,
                        tgt.interface;
END $$;

REVOKE ALL ON FUNCTION sb_panel_spy_begin(p_agent_id integer, p_uniqueid text, p_mode text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_spy_begin(p_agent_id integer, p_uniqueid text, p_mode text) TO sb_panel;
