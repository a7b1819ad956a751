-- The agent's word after speaking to the agency: confirmed (the caller is who
-- they say) or not.  Only the agent who placed the call, only once, only after
-- Asterisk accepted it.  The mark, with the agent and the number dialled, is an
-- audit row ('verify' 'callback' when confirmed).
CREATE OR REPLACE FUNCTION sb_panel_oob_confirm(p_agent_id integer, p_oob_id bigint, p_confirmed boolean)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me  agent := sb_panel_agent_row(p_agent_id);
    c   oob_call;
    v   record;
BEGIN
    SELECT * INTO c FROM oob_call WHERE oob_id = p_oob_id FOR UPDATE;
    IF me.agent_id IS NULL OR NOT FOUND OR c.agent_id <> me.agent_id OR c.purpose <> 'verify'
       OR c.confirmed IS NOT NULL OR c.originate IS DISTINCT FROM 'accepted'
       OR c.started_at < now() - interval '1 hour'
       OR NOT sb_panel_connected(me, c.uniqueid, false) THEN
        PERFORM sb_audit_append(coalesce(sb_panel_actor(me), 'panel'), c.uniqueid, NULL, NULL,
                                NULL, 'verify', 'refused',
                                format('callback mark for oob %s', p_oob_id));
        RETURN 'refused';
    END IF;
    v := sb_panel_verification(c.uniqueid);
    UPDATE oob_call SET confirmed = p_confirmed, confirmed_at = now() WHERE oob_id = p_oob_id;
    PERFORM sb_audit_append(sb_panel_actor(me), c.uniqueid, v.ani,
                            (SELECT code FROM agency WHERE agency_id = c.agency_id),
                            v.officer_number, 'verify',
                            CASE WHEN p_confirmed THEN 'callback' ELSE 'callback-denied' END,
                            format('oob %s dialled %s', c.oob_id, c.e164));
    RETURN CASE WHEN p_confirmed THEN 'callback' ELSE 'callback-denied' END;
END $$;

REVOKE ALL ON FUNCTION sb_panel_oob_confirm(p_agent_id integer, p_oob_id bigint, p_confirmed boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_oob_confirm(p_agent_id integer, p_oob_id bigint, p_confirmed boolean) TO sb_panel;
