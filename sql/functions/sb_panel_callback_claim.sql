-- Claim a request (one agent at a time; a claim left unworked for claim_minutes
-- lapses).  Returns claimed | taken | closed.
CREATE OR REPLACE FUNCTION sb_panel_callback_claim(p_agent_id integer, p_request_id bigint)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me  agent := sb_panel_agent_row(p_agent_id);
    r   callback_request;
BEGIN
    SELECT * INTO r FROM callback_request WHERE request_id = p_request_id FOR UPDATE;
    IF me.agent_id IS NULL OR NOT FOUND OR r.status <> 'open' THEN
        RETURN 'closed';
    END IF;
    IF r.claimed_by IS DISTINCT FROM me.agent_id AND r.claimed_at > now()
       - make_interval(mins => (SELECT claim_minutes FROM panel_policy)) THEN
        RETURN 'taken';
    END IF;
    UPDATE callback_request SET claimed_by = me.agent_id, claimed_at = now()
     WHERE request_id = p_request_id;
    PERFORM sb_audit_append(sb_panel_actor(me), r.uniqueid, r.ani, NULL, NULL,
                            'callback-claim', 'claimed', format('request %s', r.request_id));
    RETURN 'claimed';
END $$;

REVOKE ALL ON FUNCTION sb_panel_callback_claim(p_agent_id integer, p_request_id bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_callback_claim(p_agent_id integer, p_request_id bigint) TO sb_panel;
