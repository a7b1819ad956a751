-- Several Asterisk nodes behind the SIP front (issue 23).
--
-- node_status: what the listener knows of each node it reads: 'up' since its
-- last login, or 'lost' since its last bytes, when it stayed silent for
-- SB_NODE_LOST_S (a dead Asterisk, or a host gone).  The wall board says so
-- plainly and stops counting the node's agents; the front already sends new
-- calls elsewhere.
CREATE TABLE node_status (
    node       text PRIMARY KEY CHECK (length(node) BETWEEN 1 AND 80),
    state      text NOT NULL CHECK (state IN ('up', 'lost')),
    since      timestamptz NOT NULL,
    reason     text CHECK (length(reason) <= 200),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- who asked for a callback: the caller (the IVR's offer), or nobody: the node
-- the caller was on died after verifying them in full (sb_listener_node_state)
ALTER TABLE callback_request
    ADD COLUMN origin text NOT NULL DEFAULT 'caller' CHECK (origin IN ('caller', 'node-lost'));

-- the callers a lost node had verified in full, found by when (below)
CREATE INDEX verify_attempt_full_idx ON verify_attempt (finished_at) WHERE outcome = 'full';

-- The listener's report of a node's state (in the batch that cut its calls).
-- When the node is lost: every caller it had verified in full and lost (a
-- queued call it cut, or a call still in the IVR) gets a callback request to
-- the agency's registered number (the number the verification was made from),
-- unless the call already has one.  Returns
-- the number of requests made.
CREATE FUNCTION sb_listener_node_state(p_node text, p_state text, p_since timestamptz,
                                       p_reason text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_made integer := 0;
    n integer;
BEGIN
    INSERT INTO node_status (node, state, since, reason)
    VALUES (left(p_node, 80), p_state, p_since, left(p_reason, 200))
    ON CONFLICT (node) DO UPDATE
        SET state = EXCLUDED.state, since = EXCLUDED.since, reason = EXCLUDED.reason,
            updated_at = now()
        WHERE node_status.state IS DISTINCT FROM EXCLUDED.state;
    IF p_state = 'lost' THEN
        INSERT INTO callback_request (uniqueid, ani, origin)
        SELECT DISTINCT ON (c.uniqueid) c.uniqueid, v.ani, 'node-lost'
          FROM queue_call c
          JOIN verify_attempt v ON v.uniqueid = c.uniqueid AND v.outcome = 'full'
         WHERE c.node = p_node AND c.outcome = 'cut'
           AND c.complete_reason = format('node %s lost', p_node)
           AND c.ended_at >= p_since - interval '1 second'
           AND v.ani ~ '^\+[1-9][0-9]{6,14}$'
         ORDER BY c.uniqueid, v.finished_at DESC
        ON CONFLICT (uniqueid) DO NOTHING;
        GET DIAGNOSTICS v_made = ROW_COUNT;
        -- and those still in the IVR, verified but not yet queued: a call of this
        -- node (its uniqueid starts with the node's systemname) verified in full
        -- in the last two hours, with no Hangup stored and no queue row that
        -- ended otherwise
        INSERT INTO callback_request (uniqueid, ani, origin)
        SELECT DISTINCT ON (v.uniqueid) v.uniqueid, v.ani, 'node-lost'
          FROM verify_attempt v
         WHERE v.outcome = 'full'
           AND v.finished_at > p_since - interval '2 hours'
           AND v.finished_at <= p_since + interval '1 second'
           AND left(v.uniqueid, length(p_node) + 1) = p_node || '-'
           AND v.ani ~ '^\+[1-9][0-9]{6,14}$'
           AND NOT EXISTS (SELECT 1 FROM ami_event e WHERE e.node = p_node
                              AND e.uniqueid = v.uniqueid AND e.event = 'Hangup')
           AND NOT EXISTS (SELECT 1 FROM queue_call c WHERE c.uniqueid = v.uniqueid
                              AND c.outcome IS DISTINCT FROM 'cut')
         ORDER BY v.uniqueid, v.finished_at DESC
        ON CONFLICT (uniqueid) DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        v_made := v_made + n;
    END IF;
    PERFORM pg_notify('sb_live', 'nodes');
    RETURN v_made;
END $$;

-- The nodes for the wall board: each node's state, and how many distinct
-- agents are logged in on the nodes that are up (an agent is a member on every
-- node, and counts once).
CREATE FUNCTION sb_node_figures()
RETURNS TABLE (node text, state text, since timestamptz, reason text, agents bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT n.node, n.state, n.since, n.reason,
           (SELECT count(DISTINCT s.interface) FROM agent_state s
             WHERE s.node = n.node AND s.ended_at IS NULL)
      FROM node_status n
     ORDER BY n.node
$$;

CREATE FUNCTION sb_agents_logged_in()
RETURNS bigint LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT count(DISTINCT s.interface) FROM agent_state s
     WHERE s.ended_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM node_status n WHERE n.node = s.node AND n.state = 'lost')
$$;

REVOKE ALL ON node_status FROM PUBLIC;
REVOKE ALL ON FUNCTION sb_listener_node_state(text, text, timestamptz, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION sb_node_figures() FROM PUBLIC;
REVOKE ALL ON FUNCTION sb_agents_logged_in() FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_listener') THEN
        EXECUTE 'GRANT EXECUTE ON FUNCTION sb_listener_node_state(text, text, timestamptz, '
                'text) TO sb_listener';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_reports') THEN
        EXECUTE 'GRANT EXECUTE ON FUNCTION sb_node_figures() TO sb_reports';
        EXECUTE 'GRANT EXECUTE ON FUNCTION sb_agents_logged_in() TO sb_reports';
    END IF;
END $$;

-- Agents on every node: an agent's login, logout and pause (a feature code on
-- the desk phone, or the panel) made on one node is the state every node
-- follows.  The listener of the node where it happened records it (from
-- QueueMemberAdded, QueueMemberRemoved, QueueMemberPause, never from a state
-- report or a QueueStatus list); every listener applies it to its own node
-- (QueueAdd, QueueRemove, QueuePause), at once on NOTIFY sb_presence and again
-- after each login.  A node that applies it reports the same state back, which
-- changes nothing and notifies nobody.  Newer changes win (by Asterisk's event
-- time).
CREATE TABLE agent_presence (
    queue       text NOT NULL CHECK (length(queue) BETWEEN 1 AND 80),
    interface   text NOT NULL CHECK (interface ~ '^[A-Za-z]{2,10}/[A-Za-z0-9_.@-]{1,80}$'),
    member_name text CHECK (length(member_name) <= 80),
    logged_in   boolean NOT NULL,
    paused      boolean NOT NULL,
    reason      text CHECK (length(reason) <= 80),
    at          timestamptz NOT NULL,
    node        text NOT NULL CHECK (length(node) BETWEEN 1 AND 80),
    PRIMARY KEY (queue, interface)
);

CREATE FUNCTION sb_listener_presence(p_node text, p_queue text[], p_interface text[],
                                     p_name text[], p_logged_in boolean[], p_paused boolean[],
                                     p_reason text[], p_at timestamptz[])
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_changed integer := 0;
    n integer;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_queue, 1), 0) LOOP
        CONTINUE WHEN p_interface[i] !~ '^[A-Za-z]{2,10}/[A-Za-z0-9_.@-]{1,80}$'
                   OR length(p_queue[i]) NOT BETWEEN 1 AND 80;
        INSERT INTO agent_presence AS a (queue, interface, member_name, logged_in, paused,
                                         reason, at, node)
        VALUES (p_queue[i], p_interface[i], left(p_name[i], 80), p_logged_in[i],
                p_logged_in[i] AND p_paused[i],
                CASE WHEN p_logged_in[i] AND p_paused[i] THEN left(p_reason[i], 80) END,
                p_at[i], left(p_node, 80))
        ON CONFLICT (queue, interface) DO UPDATE
            SET member_name = coalesce(EXCLUDED.member_name, a.member_name),
                logged_in = EXCLUDED.logged_in, paused = EXCLUDED.paused,
                reason = EXCLUDED.reason, at = EXCLUDED.at, node = EXCLUDED.node
            WHERE EXCLUDED.at >= a.at
              AND (a.logged_in, a.paused, coalesce(a.reason, ''))
                  IS DISTINCT FROM (EXCLUDED.logged_in, EXCLUDED.paused,
                                    coalesce(EXCLUDED.reason, ''));
        GET DIAGNOSTICS n = ROW_COUNT;
        v_changed := v_changed + n;
    END LOOP;
    IF v_changed > 0 THEN
        PERFORM pg_notify('sb_presence', left(p_node, 80));
    END IF;
    RETURN v_changed;
END $$;

CREATE FUNCTION sb_listener_presence_wanted()
RETURNS SETOF agent_presence
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT * FROM agent_presence ORDER BY interface, queue
$$;

REVOKE ALL ON agent_presence FROM PUBLIC;
REVOKE ALL ON FUNCTION sb_listener_presence(text, text[], text[], text[], boolean[],
                                            boolean[], text[], timestamptz[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION sb_listener_presence_wanted() FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_listener') THEN
        EXECUTE 'GRANT EXECUTE ON FUNCTION sb_listener_presence(text, text[], text[], '
                'text[], boolean[], boolean[], text[], timestamptz[]) TO sb_listener';
        EXECUTE 'GRANT EXECUTE ON FUNCTION sb_listener_presence_wanted() TO sb_listener';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_reports') THEN
        EXECUTE 'GRANT SELECT ON agent_presence TO sb_reports';
    END IF;
END $$;

-- The panel's own login, logout and pause: the same agent_presence rows the
-- desk phone's feature codes make (the queues *11 logs into, extensions.conf),
-- for the agent's own phone only, each audited; every listener then applies
-- them to its node.  Pause reasons: the desk phone's (*21..*24).
CREATE FUNCTION sb_panel_presence(p_agent_id integer, p_action text, p_reason text,
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

-- What the panel shows of the agent's own membership: per queue, logged in,
-- paused and why, and when and where it last changed.
CREATE FUNCTION sb_panel_presence_state(p_agent_id integer)
RETURNS TABLE (queue text, logged_in boolean, paused boolean, reason text, at timestamptz,
               node text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT a.queue, a.logged_in, a.paused, a.reason, a.at, a.node
      FROM agent_presence a JOIN agent g ON g.interface = a.interface
     WHERE g.agent_id = p_agent_id
     ORDER BY a.queue
$$;

REVOKE ALL ON FUNCTION sb_panel_presence(integer, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION sb_panel_presence_state(integer) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_panel') THEN
        EXECUTE 'GRANT EXECUTE ON FUNCTION sb_panel_presence(integer, text, text), '
                'sb_panel_presence_state(integer) TO sb_panel';
    END IF;
END $$;
