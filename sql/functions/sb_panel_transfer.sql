-- An agent hands the call on (the panel's transfer button): the call must be
-- theirs and in progress; audited.
CREATE OR REPLACE FUNCTION sb_panel_transfer(p_agent_id integer, p_uniqueid text, p_target text)
RETURNS TABLE (outcome text, why text, interface text, node text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me agent := sb_panel_agent_row(p_agent_id);
    c  queue_call;
BEGIN
    IF me.agent_id IS NULL THEN
        RETURN QUERY SELECT 'refused'::text, 'log in'::text, NULL::text, NULL::text;
        RETURN;
    END IF;
    SELECT * INTO c FROM queue_call q
     WHERE q.uniqueid = p_uniqueid AND q.member_interface = me.interface
       AND q.answered_at IS NOT NULL AND q.ended_at IS NULL
     ORDER BY q.answered_at DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'refused'::text, 'not your call in progress'::text, NULL::text,
                            NULL::text;
        RETURN;
    END IF;
    PERFORM sb_audit_append(sb_panel_actor(me), p_uniqueid, NULL, NULL, NULL, 'transfer',
                            'requested', left(p_target, 40));
    RETURN QUERY SELECT 'ok'::text, NULL::text, me.interface, c.node;
END $$;

REVOKE ALL ON FUNCTION sb_panel_transfer(p_agent_id integer, p_uniqueid text, p_target text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_transfer(p_agent_id integer, p_uniqueid text, p_target text) TO sb_panel;
