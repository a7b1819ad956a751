-- Start calling the agency back: the agency the caller claimed in the IVR (or,
-- when they claimed none, the one the agent picked from the list), its
-- registered number from agency_line, never a number from the caller or the
-- agent.  Rate-limited per agent and per call; every start and every refusal is
-- an audit row.  outcome: started | refused (why).
CREATE OR REPLACE FUNCTION sb_panel_oob_begin(p_agent_id integer, p_uniqueid text, p_agency_code text,
    OUT outcome text, OUT why text, OUT oob_id bigint, OUT e164 text, OUT interface text,
    OUT agency_name text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me  agent := sb_panel_agent_row(p_agent_id);
    pol panel_policy;
    v   record;
    g   agency;
BEGIN
    p_uniqueid := left(p_uniqueid, 150);
    outcome := 'refused';
    IF me.agent_id IS NULL THEN
        why := 'no agent';
        RETURN;
    END IF;
    SELECT * INTO pol FROM panel_policy;
    v := sb_panel_verification(p_uniqueid);
    IF v.agency_code IS NOT NULL THEN
        SELECT * INTO g FROM agency WHERE code = v.agency_code;
    ELSIF p_agency_code ~ '^[0-9]{2,6}$' THEN
        SELECT * INTO g FROM agency WHERE code = p_agency_code;
    END IF;
    why := CASE
        WHEN NOT sb_panel_connected(me, p_uniqueid, true) THEN 'not your call'
        WHEN v.level IN ('full', 'callback') THEN 'already verified'
        WHEN g.agency_id IS NULL THEN 'no such agency'
        WHEN g.suspended_at IS NOT NULL THEN 'agency suspended'
        WHEN sb_panel_oob_spent(me.agent_id) THEN 'too many calls back: wait'
        WHEN (SELECT count(*) FROM oob_call c WHERE c.uniqueid = p_uniqueid
                 AND c.purpose = 'verify') >= pol.oob_per_call THEN 'too many calls back for this call'
    END;
    IF why IS NULL THEN
        SELECT l.e164 INTO e164 FROM agency_line l WHERE l.agency_id = g.agency_id
         ORDER BY l.created_at, l.e164 LIMIT 1;
        IF NOT FOUND THEN
            why := 'agency has no registered number';
        END IF;
    END IF;
    IF why IS NOT NULL THEN
        e164 := NULL;
        PERFORM sb_audit_append(sb_panel_actor(me), p_uniqueid, v.ani, g.code,
                                v.officer_number, 'oob-dial', 'refused', why);
        RETURN;
    END IF;
    INSERT INTO oob_call (purpose, uniqueid, agent_id, agency_id, e164)
    VALUES ('verify', p_uniqueid, me.agent_id, g.agency_id, e164) RETURNING oob_call.oob_id
      INTO oob_id;
    outcome := 'started'; interface := me.interface; agency_name := g.name;
    PERFORM sb_audit_append(sb_panel_actor(me), p_uniqueid, v.ani, g.code, v.officer_number,
                            'oob-dial', 'started', format('oob %s to %s', oob_id, e164));
END $$;

REVOKE ALL ON FUNCTION sb_panel_oob_begin(p_agent_id integer, p_uniqueid text, p_agency_code text, OUT outcome text, OUT why text, OUT oob_id bigint, OUT e164 text, OUT interface text, OUT agency_name text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_oob_begin(p_agent_id integer, p_uniqueid text, p_agency_code text, OUT outcome text, OUT why text, OUT oob_id bigint, OUT e164 text, OUT interface text, OUT agency_name text) TO sb_panel;
