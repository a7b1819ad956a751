-- The panel's own login, logout and pause: the same agent_presence rows the
-- desk phone's feature codes make (the queues *11 logs into, extensions.conf),
-- for the agent's own phone only, each audited; every listener then applies
-- them to its node.  Pause reasons: the desk phone's (*21..*24).
CREATE OR REPLACE FUNCTION sb_panel_presence(p_agent_id integer, p_action text, p_reason text,
                                  OUT outcome text, OUT why text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me  agent := sb_panel_agent_row(p_agent_id);
    q   text;
    v_in boolean;
    v_paused boolean;
BEGIN
    why := CASE
        WHEN me.agent_id IS NULL THEN 'no agent'
        WHEN p_action IS NULL OR p_action NOT IN ('login', 'logout', 'pause', 'resume')
             THEN 'no such action (login, logout, pause, resume)'
        WHEN p_action = 'pause' AND (p_reason IS NULL OR p_reason NOT IN
             ('lunch', 'training', 'after-call-work', 'break'))
             THEN 'a pause has a reason: lunch, training, after-call-work or break'
        WHEN p_action IN ('pause', 'resume') AND NOT EXISTS (
             SELECT 1 FROM agent_presence a WHERE a.interface = me.interface AND a.logged_in)
             THEN 'log in first'
    END;
    IF why IS NOT NULL THEN
        outcome := 'refused';
        IF me.agent_id IS NOT NULL THEN
            PERFORM sb_audit_append(sb_panel_actor(me), NULL, NULL, NULL, NULL,
                                    'agent-' || left(coalesce(p_action, '?'), 20),
                                    'refused', why);
        END IF;
        RETURN;
    END IF;
    v_in := p_action <> 'logout';
    v_paused := p_action = 'pause';
    FOREACH q IN ARRAY ARRAY['intake', 'priority', 'overflow'] LOOP
        INSERT INTO agent_presence AS a (queue, interface, member_name, logged_in, paused,
                                         reason, at, node)
        VALUES (q, me.interface, left(me.name, 80), v_in, v_paused,
                CASE WHEN v_paused THEN p_reason END, clock_timestamp(), 'panel')
        ON CONFLICT (queue, interface) DO UPDATE
            SET logged_in = EXCLUDED.logged_in, paused = EXCLUDED.paused,
                reason = EXCLUDED.reason, at = EXCLUDED.at, node = EXCLUDED.node,
                member_name = coalesce(a.member_name, EXCLUDED.member_name)
            -- pause and resume change the queues the agent is logged into
            WHERE p_action IN ('login', 'logout') OR a.logged_in;
    END LOOP;
    PERFORM pg_notify('sb_presence', 'panel');
    PERFORM sb_audit_append(sb_panel_actor(me), NULL, NULL, NULL, NULL,
                            'agent-' || p_action, 'ok',
                            me.interface || CASE WHEN v_paused THEN ' ' || p_reason ELSE '' END);
    outcome := 'ok';
END $$;

REVOKE ALL ON FUNCTION sb_panel_presence(p_agent_id integer, p_action text, p_reason text, OUT outcome text, OUT why text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_presence(p_agent_id integer, p_action text, p_reason text, OUT outcome text, OUT why text) TO sb_panel;
