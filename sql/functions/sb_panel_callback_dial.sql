-- Dial a claimed request: to its registered number only, rate-limited like the
-- verification calls.  outcome: started | refused (why).
CREATE OR REPLACE FUNCTION sb_panel_callback_dial(p_agent_id integer, p_request_id bigint,
    OUT outcome text, OUT why text, OUT oob_id bigint, OUT e164 text, OUT interface text,
    OUT agency_name text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me  agent := sb_panel_agent_row(p_agent_id);
    pol panel_policy;
    r   callback_request;
    d   record;
BEGIN
    outcome := 'refused';
    SELECT * INTO pol FROM panel_policy;
    SELECT * INTO r FROM callback_request WHERE request_id = p_request_id FOR UPDATE;
    d := sb_panel_callback_number(p_request_id);
    why := CASE
        WHEN me.agent_id IS NULL THEN 'no agent'
        WHEN r.request_id IS NULL OR r.status <> 'open' THEN 'request closed'
        WHEN r.claimed_by IS DISTINCT FROM me.agent_id
             OR r.claimed_at <= now() - make_interval(mins => pol.claim_minutes)
             THEN 'claim it first'
        WHEN d.e164 IS NULL THEN 'no registered number for this caller'
        WHEN sb_panel_oob_spent(me.agent_id) THEN 'too many calls back: wait'
    END;
    IF why IS NOT NULL THEN
        IF me.agent_id IS NOT NULL THEN
            PERFORM sb_audit_append(sb_panel_actor(me), r.uniqueid, r.ani, NULL, NULL,
                                    'callback-dial', 'refused', why);
        END IF;
        RETURN;
    END IF;
    INSERT INTO oob_call (purpose, uniqueid, request_id, agent_id, agency_id, e164)
    VALUES ('callback', r.uniqueid, r.request_id, me.agent_id, d.agency_id, d.e164)
    RETURNING oob_call.oob_id INTO oob_id;
    UPDATE callback_request SET started_at = coalesce(started_at, now()), claimed_at = now()
     WHERE request_id = p_request_id;
    outcome := 'started'; e164 := d.e164; interface := me.interface; agency_name := d.name;
    PERFORM sb_audit_append(sb_panel_actor(me), r.uniqueid, r.ani, NULL, NULL,
                            'callback-dial', 'started',
                            format('request %s oob %s to %s', r.request_id, oob_id, e164));
END $$;

REVOKE ALL ON FUNCTION sb_panel_callback_dial(p_agent_id integer, p_request_id bigint, OUT outcome text, OUT why text, OUT oob_id bigint, OUT e164 text, OUT interface text, OUT agency_name text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_callback_dial(p_agent_id integer, p_request_id bigint, OUT outcome text, OUT why text, OUT oob_id bigint, OUT e164 text, OUT interface text, OUT agency_name text) TO sb_panel;
