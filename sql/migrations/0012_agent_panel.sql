-- The agent panel (issue 12): the screen pop, out-of-band verification by
-- calling the agency's registered number, dispositions and callbacks.
--
-- The panel server logs in as its own role sb_panel, which may only EXECUTE the
-- sb_panel_* functions below (SECURITY DEFINER), like sb_agi: it reads no table
-- itself, cannot touch the audit log except through sb_audit_append's rows these
-- functions write, and never sees a PIN hash.  Every decision (is this agent
-- connected to this call, was the caller verified, which number may be dialled,
-- how often) is taken here, not in the server.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_panel') THEN
        BEGIN
            CREATE ROLE sb_panel NOLOGIN;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'role sb_panel does not exist and % may not create it: run '
                'CREATE ROLE sb_panel LOGIN; as a superuser', current_user;
        END;
    END IF;
END $$;

-- Members whose phones ring for this caller now (AgentCalled until their
-- AgentRingNoAnswer, the answer or the end), kept by the AMI listener.
ALTER TABLE queue_call ADD COLUMN ringing text[];
CREATE INDEX queue_call_member_idx ON queue_call (member_interface, ended_at)
    WHERE member_interface IS NOT NULL;

-- Panel logins: consecutive failures lock the account for a while.
ALTER TABLE agent ADD COLUMN failed_count integer NOT NULL DEFAULT 0,
                  ADD COLUMN locked_until timestamptz;

-- What a case shows on the panel, by role: summary to agents and supervisors,
-- sensitive to supervisors only.  Only for a call verified in full (or by
-- callback), only to the agent connected to it, each display an audit row.
ALTER TABLE case_record ADD COLUMN summary text CHECK (length(summary) <= 2000),
                        ADD COLUMN sensitive text CHECK (length(sensitive) <= 2000);

-- Panel sessions, held here so that a logout, a disabled account or an idle
-- session ends at once.  The cookie holds a random token; only its SHA-256 is
-- stored.
CREATE TABLE panel_session (
    token_hash   bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    agent_id     integer NOT NULL REFERENCES agent,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    idle_s       integer NOT NULL CHECK (idle_s BETWEEN 10 AND 86400),
    ended_at     timestamptz
);
CREATE INDEX panel_session_agent_idx ON panel_session (agent_id);

-- The site's dispositions (switchboard disposition ...); retired codes stay for
-- the calls that used them.
CREATE TABLE disposition_code (
    code       text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9-]{1,31}$'),
    label      text NOT NULL CHECK (length(label) BETWEEN 1 AND 80),
    sort       integer NOT NULL DEFAULT 100,
    retired_at timestamptz
);
INSERT INTO disposition_code (code, label, sort) VALUES
    ('info-given', 'Information given', 10),
    ('referred', 'Referred', 20),
    ('callback-needed', 'Callback needed', 30),
    ('not-verified', 'Not verified: nothing disclosed', 40),
    ('hoax', 'Hoax or misuse', 50),
    ('not-reached', 'Callback: nobody reached', 60);

-- One disposition per answered call, by the agent who took it.  wrapup_s: from
-- the end of the call to the save (0 when saved during the call); it feeds AHT
-- (sql/kpi.md).  The note stays here; the audit row carries its SHA-256.
CREATE TABLE call_disposition (
    uniqueid   text PRIMARY KEY,
    agent_id   integer NOT NULL REFERENCES agent,
    code       text NOT NULL REFERENCES disposition_code,
    note       text CHECK (length(note) <= 2000),
    saved_at   timestamptz NOT NULL DEFAULT now(),
    call_ended_at timestamptz,
    wrapup_s   numeric(10, 1) CHECK (wrapup_s >= 0)
);

-- Out-of-band calls: to an agency's registered number, for verifying a caller
-- (purpose verify) or working a callback request (purpose callback).  The
-- number is taken from agency_line here; nobody types it.
CREATE TABLE oob_call (
    oob_id       bigserial PRIMARY KEY,
    purpose      text NOT NULL CHECK (purpose IN ('verify', 'callback')),
    uniqueid     text NOT NULL,  -- the caller's call (of the request, for a callback)
    request_id   bigint REFERENCES callback_request,
    agent_id     integer NOT NULL REFERENCES agent,
    agency_id    integer NOT NULL REFERENCES agency,
    e164         text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    originate    text CHECK (originate IN ('accepted', 'failed')),
    answered     boolean,
    confirmed    boolean,
    confirmed_at timestamptz
);
CREATE INDEX oob_call_agent_idx ON oob_call (agent_id, started_at);
CREATE INDEX oob_call_uniqueid_idx ON oob_call (uniqueid);

ALTER TABLE callback_request
    ADD COLUMN claimed_by  integer REFERENCES agent,
    ADD COLUMN claimed_at  timestamptz,
    ADD COLUMN started_at  timestamptz,
    ADD COLUMN disposition text REFERENCES disposition_code,
    ADD COLUMN note        text CHECK (length(note) <= 2000);

-- The panel's limits, like verify_policy.
CREATE TABLE panel_policy (
    id                 boolean PRIMARY KEY DEFAULT true CHECK (id),
    login_max_failures integer NOT NULL DEFAULT 8 CHECK (login_max_failures BETWEEN 1 AND 100),
    login_lock_minutes integer NOT NULL DEFAULT 15 CHECK (login_lock_minutes BETWEEN 1 AND 1440),
    oob_per_agent      integer NOT NULL DEFAULT 6 CHECK (oob_per_agent BETWEEN 1 AND 100),
    oob_window_minutes integer NOT NULL DEFAULT 10 CHECK (oob_window_minutes BETWEEN 1 AND 1440),
    oob_per_call       integer NOT NULL DEFAULT 3 CHECK (oob_per_call BETWEEN 1 AND 20),
    claim_minutes      integer NOT NULL DEFAULT 30 CHECK (claim_minutes BETWEEN 1 AND 1440),
    after_call_minutes integer NOT NULL DEFAULT 60 CHECK (after_call_minutes BETWEEN 1 AND 1440)
);
INSERT INTO panel_policy DEFAULT VALUES;

-- --- helpers (not granted) -----------------------------------------------------

-- The agent behind a session, or nothing.
CREATE FUNCTION sb_panel_agent_row(p_agent_id integer) RETURNS agent
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT * FROM agent WHERE agent_id = p_agent_id AND disabled_at IS NULL
$$;

-- The verification of a call: its last finished attempt, and a callback mark.
CREATE FUNCTION sb_panel_verification(p_uniqueid text,
    OUT level text, OUT why text, OUT agency_id integer, OUT agency_code text,
    OUT agency_name text, OUT officer_number text, OUT officer_name text, OUT ani text,
    OUT registered_line boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    a verify_attempt;
BEGIN
    SELECT * INTO a FROM verify_attempt v WHERE v.uniqueid = p_uniqueid
     ORDER BY (v.outcome IN ('full', 'line-only')) DESC NULLS LAST, v.started_at DESC
     LIMIT 1;
    IF FOUND THEN
        agency_code := a.agency; officer_number := a.officer; ani := a.ani;
        registered_line := a.line_ok;
        SELECT g.agency_id, g.name INTO agency_id, agency_name
          FROM agency g WHERE g.code = a.agency;
        SELECT o.name INTO officer_name FROM officer o WHERE o.officer_id = a.officer_id;
        IF a.outcome IN ('full', 'line-only') THEN
            level := a.outcome;
        ELSE
            level := 'unverified';
            why := CASE
                WHEN a.finished_at IS NULL THEN 'verification not finished'
                WHEN a.status = 'throttled' THEN 'calling number blocked after failures'
                WHEN a.status = 'locked' OR a.outcome = 'locked' THEN 'officer locked'
                WHEN a.status = 'unknown' THEN 'unknown agency or officer id'
                ELSE 'wrong PIN' END;
        END IF;
    ELSE
        level := 'unverified';
        why := 'no verification on this call';
    END IF;
    IF EXISTS (SELECT 1 FROM oob_call c WHERE c.uniqueid = p_uniqueid
                  AND c.purpose = 'verify' AND c.confirmed) THEN
        level := 'callback';
        why := NULL;
        SELECT c.agency_id, g.code, g.name INTO agency_id, agency_code, agency_name
          FROM oob_call c JOIN agency g USING (agency_id)
         WHERE c.uniqueid = p_uniqueid AND c.purpose = 'verify' AND c.confirmed
         ORDER BY c.confirmed_at DESC LIMIT 1;
    END IF;
END $$;

-- Is this agent the one connected to this call (answered, and not ended longer
-- ago than the after-call time)?
CREATE FUNCTION sb_panel_connected(p_agent agent, p_uniqueid text, p_during_only boolean)
RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM queue_call c
         WHERE c.uniqueid = p_uniqueid AND c.member_interface = p_agent.interface
           AND c.answered_at IS NOT NULL
           AND (c.ended_at IS NULL OR (NOT p_during_only AND c.ended_at > now()
                - make_interval(mins => (SELECT after_call_minutes FROM panel_policy)))))
$$;

CREATE FUNCTION sb_panel_actor(p_agent agent) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT 'agent:' || p_agent.login $$;

-- The case the call's lookup found (its audit row), or nothing.
CREATE FUNCTION sb_panel_case_of(p_uniqueid text) RETURNS case_record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.* FROM audit_log l JOIN case_record c ON c.ref = l.detail
     WHERE l.uniqueid = p_uniqueid AND l.action = 'lookup' AND l.result = 'found'
     ORDER BY l.at DESC LIMIT 1
$$;

-- Has this agent used up their calls back for now (panel_policy)?
CREATE FUNCTION sb_panel_oob_spent(p_agent_id integer) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT (SELECT count(*) FROM oob_call c
             WHERE c.agent_id = p_agent_id
               AND c.started_at > now() - make_interval(mins => p.oob_window_minutes))
           >= p.oob_per_agent
      FROM panel_policy p
$$;

-- A disposition the site offers now.
CREATE FUNCTION sb_panel_disposition_ok(p_code text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM disposition_code WHERE code = p_code AND retired_at IS NULL)
$$;

-- What the audit row says of an agent's note: its SHA-256, never its text.
CREATE FUNCTION sb_panel_note_detail(p_note text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_note IS NULL THEN 'no note'
                ELSE 'note sha256 ' || encode(sha256(convert_to(p_note, 'UTF8')), 'hex') END
$$;

-- --- login and sessions --------------------------------------------------------

-- The password hash of an enabled, unlocked agent (the server checks it with
-- the pepper it holds), or nothing: the server then does the same work on a dummy.
CREATE FUNCTION sb_panel_login_hash(p_login text)
RETURNS TABLE (agent_id integer, password_hash text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT a.agent_id, a.password_hash FROM agent a
     WHERE a.login = left(p_login, 40) AND a.disabled_at IS NULL
       AND a.password_hash IS NOT NULL
       AND (a.locked_until IS NULL OR a.locked_until <= now())
$$;

-- The result of a login: a session (token hash) on success; a failure counted,
-- and the account locked at the limit.  Every login is an audit row.
-- Returns: ok | failed | locked.
CREATE FUNCTION sb_panel_login(p_login text, p_ok boolean, p_token_hash bytea,
                               p_lifetime_s integer, p_idle_s integer)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    pol panel_policy;
    a   agent;
BEGIN
    SELECT * INTO pol FROM panel_policy;
    p_login := left(p_login, 40);
    SELECT * INTO a FROM agent WHERE login = p_login FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM sb_audit_append('panel', NULL, NULL, NULL, NULL, 'panel-login', 'failed',
                                'unknown login');
        RETURN 'failed';
    END IF;
    IF a.disabled_at IS NOT NULL OR a.locked_until > now() THEN
        PERFORM sb_audit_append(sb_panel_actor(a), NULL, NULL, NULL, NULL, 'panel-login',
                                'refused', CASE WHEN a.disabled_at IS NOT NULL
                                                THEN 'disabled' ELSE 'locked' END);
        RETURN 'locked';
    END IF;
    IF p_ok AND a.password_hash IS NOT NULL THEN
        UPDATE agent SET failed_count = 0, locked_until = NULL WHERE agent_id = a.agent_id;
        INSERT INTO panel_session (token_hash, agent_id, expires_at, idle_s)
        VALUES (p_token_hash, a.agent_id,
                now() + make_interval(secs => least(greatest(p_lifetime_s, 10), 86400)),
                least(greatest(p_idle_s, 10), 86400));
        PERFORM sb_audit_append(sb_panel_actor(a), NULL, NULL, NULL, NULL, 'panel-login',
                                'ok');
        RETURN 'ok';
    END IF;
    UPDATE agent SET failed_count = failed_count + 1,
                     locked_until = CASE WHEN failed_count + 1 >= pol.login_max_failures
                                         THEN now() + make_interval(mins => pol.login_lock_minutes)
                                    END
     WHERE agent_id = a.agent_id RETURNING * INTO a;
    PERFORM sb_audit_append(sb_panel_actor(a), NULL, NULL, NULL, NULL, 'panel-login',
                            CASE WHEN a.locked_until IS NOT NULL THEN 'locked' ELSE 'failed' END,
                            format('%s failures', a.failed_count));
    RETURN CASE WHEN a.locked_until IS NOT NULL THEN 'locked' ELSE 'failed' END;
END $$;

-- The agent of a live session (and the session's idle clock restarts), or no row.
CREATE FUNCTION sb_panel_session(p_token_hash bytea)
RETURNS TABLE (agent_id integer, login text, name text, interface text, role text,
               expires_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN QUERY
    UPDATE panel_session s SET last_seen_at = now()
      FROM agent a
     WHERE s.token_hash = p_token_hash AND a.agent_id = s.agent_id
       AND s.ended_at IS NULL AND s.expires_at > now()
       AND s.last_seen_at > now() - make_interval(secs => s.idle_s)
       AND a.disabled_at IS NULL
    RETURNING a.agent_id, a.login, a.name, a.interface, a.role, s.expires_at;
END $$;

CREATE FUNCTION sb_panel_logout(p_token_hash bytea) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE panel_session SET ended_at = now()
     WHERE token_hash = p_token_hash AND ended_at IS NULL
$$;

-- --- the screen pop ----------------------------------------------------------------

-- The calls this agent may see now: ringing on their phone, connected to them,
-- or ended within the after-call time and not yet given a disposition.  A
-- supervisor also sees every other live call (context only: case details go to
-- the connected agent alone).  Never a case's details: see sb_panel_case.
CREATE FUNCTION sb_panel_calls(p_agent_id integer)
RETURNS TABLE (uniqueid text, queue text, state text, mine boolean, caller_num text,
               entered_at timestamptz, answered_at timestamptz, ended_at timestamptz,
               member_name text, level text, why text, agency_code text, agency_name text,
               officer_number text, officer_name text, ani text, registered_line boolean,
               case_ref text, case_priority text, disposition text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me  agent := sb_panel_agent_row(p_agent_id);
    pol panel_policy;
BEGIN
    IF me.agent_id IS NULL THEN
        RETURN;
    END IF;
    SELECT * INTO pol FROM panel_policy;
    RETURN QUERY
    WITH c AS (
        SELECT DISTINCT ON (q.uniqueid) q.*,
               CASE WHEN q.ended_at IS NOT NULL THEN 'ended'
                    WHEN q.answered_at IS NOT NULL THEN 'connected'
                    WHEN me.interface = ANY (q.ringing) THEN 'ringing'
                    ELSE 'waiting' END AS st,
               (q.member_interface = me.interface
                OR (q.answered_at IS NULL AND me.interface = ANY (q.ringing))) AS is_mine
          FROM queue_call q
         WHERE ((q.ended_at IS NULL AND q.entered_at > now() - interval '1 day'
                 AND (me.interface = ANY (q.ringing) OR q.member_interface = me.interface
                      OR me.role = 'supervisor'))
                OR (q.member_interface = me.interface AND q.answered_at IS NOT NULL
                    AND q.ended_at > now() - make_interval(mins => pol.after_call_minutes)
                    AND NOT EXISTS (SELECT 1 FROM call_disposition d
                                     WHERE d.uniqueid = q.uniqueid)))
         ORDER BY q.uniqueid, q.entered_at DESC
    )
    SELECT c.uniqueid, c.queue, c.st, c.is_mine, left(c.caller_num, 40), c.entered_at,
           c.answered_at, c.ended_at, c.member_name, v.level, v.why, v.agency_code,
           v.agency_name, v.officer_number, v.officer_name, v.ani, v.registered_line,
           CASE WHEN v.level IN ('full', 'line-only', 'callback') THEN k.ref END,
           CASE WHEN v.level IN ('full', 'line-only', 'callback') THEN k.priority END,
           d.code
      FROM c
      CROSS JOIN LATERAL sb_panel_verification(c.uniqueid) v
      LEFT JOIN LATERAL sb_panel_case_of(c.uniqueid) k ON true
      LEFT JOIN call_disposition d ON d.uniqueid = c.uniqueid
     ORDER BY c.is_mine DESC, c.entered_at DESC
     LIMIT 50;
END $$;

-- A case's details, for the agent connected to a call verified in full or by
-- callback, with the fields the agent's role may see.  Each display is an
-- audit row (who saw which case, for which call); a refusal is one too.
CREATE FUNCTION sb_panel_case(p_agent_id integer, p_uniqueid text,
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

-- A case lookup from the panel, for a call verified by callback (the caller's
-- own lookup in the IVR needs a PIN verification): the agent types the case
-- number the caller gives; the same limit as the IVR's (lookup_max per call).
CREATE FUNCTION sb_panel_case_lookup(p_agent_id integer, p_uniqueid text,
                                     p_case_number text, OUT outcome text,
                                     OUT case_ref text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me  agent := sb_panel_agent_row(p_agent_id);
    v   record;
    v_n integer;
    v_why text;
BEGIN
    p_uniqueid := left(p_uniqueid, 150);
    IF me.agent_id IS NULL THEN
        outcome := 'refused';
        RETURN;
    END IF;
    v := sb_panel_verification(p_uniqueid);
    SELECT count(*) INTO v_n FROM audit_log l
     WHERE l.uniqueid = p_uniqueid AND l.action = 'lookup' AND l.actor LIKE 'agent:%';
    v_why := CASE
        WHEN NOT sb_panel_connected(me, p_uniqueid, true) THEN 'not your call'
        WHEN v.level NOT IN ('full', 'callback') THEN 'verification ' || v.level
        WHEN v_n >= (SELECT lookup_max FROM verify_policy) THEN 'too many lookups'
        WHEN p_case_number IS NULL OR p_case_number !~ '^[0-9]{6,12}$' THEN 'malformed'
    END;
    IF v_why IS NOT NULL THEN
        outcome := 'refused';
        PERFORM sb_audit_append(sb_panel_actor(me), p_uniqueid, v.ani, v.agency_code,
                                v.officer_number, 'lookup', 'refused', v_why);
        RETURN;
    END IF;
    SELECT c.ref INTO case_ref FROM case_record c WHERE c.case_number = p_case_number;
    outcome := CASE WHEN FOUND THEN 'found' ELSE 'not-found' END;
    PERFORM sb_audit_append(sb_panel_actor(me), p_uniqueid, v.ani, v.agency_code,
                            v.officer_number, 'lookup', outcome, case_ref);
END $$;

-- The agencies an agent may call back when the caller claimed none.
CREATE FUNCTION sb_panel_agencies()
RETURNS TABLE (code text, name text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT g.code, g.name FROM agency g
     WHERE g.suspended_at IS NULL AND EXISTS (SELECT 1 FROM agency_line l
                                               WHERE l.agency_id = g.agency_id)
     ORDER BY g.name
$$;

-- --- out-of-band verification ----------------------------------------------------

-- Start calling the agency back: the agency the caller claimed in the IVR (or,
-- when they claimed none, the one the agent picked from the list), its
-- registered number from agency_line, never a number from the caller or the
-- agent.  Rate-limited per agent and per call; every start and every refusal is
-- an audit row.  outcome: started | refused (why).
CREATE FUNCTION sb_panel_oob_begin(p_agent_id integer, p_uniqueid text, p_agency_code text,
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

-- What Asterisk said to the Originate (accepted | failed), and whether the
-- agency answered: an audit row each.
CREATE FUNCTION sb_panel_oob_result(p_oob_id bigint, p_originate text, p_answered boolean)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    c oob_call;
BEGIN
    UPDATE oob_call SET originate = CASE WHEN p_originate IN ('accepted', 'failed')
                                          THEN p_originate ELSE 'failed' END,
                        answered = p_answered
     WHERE oob_id = p_oob_id AND originate IS NULL RETURNING * INTO c;
    IF FOUND THEN
        PERFORM sb_audit_append('agent:' || (SELECT login FROM agent
                                              WHERE agent_id = c.agent_id),
                                c.uniqueid, NULL, (SELECT code FROM agency
                                                    WHERE agency_id = c.agency_id), NULL,
                                'oob-call', c.originate,
                                format('oob %s to %s%s', c.oob_id, c.e164,
                                       CASE WHEN p_answered THEN ' answered' ELSE '' END));
    END IF;
END $$;

-- The agent's word after speaking to the agency: confirmed (the caller is who
-- they say) or not.  Only the agent who placed the call, only once, only after
-- Asterisk accepted it.  The mark, with the agent and the number dialled, is an
-- audit row ('verify' 'callback' when confirmed).
CREATE FUNCTION sb_panel_oob_confirm(p_agent_id integer, p_oob_id bigint, p_confirmed boolean)
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

-- --- dispositions -------------------------------------------------------------------

CREATE FUNCTION sb_panel_dispositions()
RETURNS TABLE (code text, label text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT code, label FROM disposition_code WHERE retired_at IS NULL ORDER BY sort, code
$$;

-- The outcome of an answered call, by the agent who took it, once.  Returns
-- saved | refused (why).
CREATE FUNCTION sb_panel_dispose(p_agent_id integer, p_uniqueid text, p_code text,
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

-- --- callbacks ------------------------------------------------------------------------

-- Open callback requests, oldest first, with who has claimed each.  The number
-- shown is the registered number a call would go to (none: it cannot be dialled).
CREATE FUNCTION sb_panel_callbacks(p_agent_id integer)
RETURNS TABLE (request_id bigint, requested_at timestamptz, age_s integer, case_ref text,
               agency_name text, dial_e164 text, claimed_by text, claimed_by_me boolean,
               started_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me  agent := sb_panel_agent_row(p_agent_id);
    pol panel_policy;
BEGIN
    IF me.agent_id IS NULL THEN
        RETURN;
    END IF;
    SELECT * INTO pol FROM panel_policy;
    RETURN QUERY
    SELECT r.request_id, r.requested_at, extract(epoch FROM now() - r.requested_at)::integer,
           r.case_ref, d.name, d.e164,
           CASE WHEN r.claimed_at > now() - make_interval(mins => pol.claim_minutes)
                THEN a.name END,
           r.claimed_by = me.agent_id AND r.claimed_at > now()
               - make_interval(mins => pol.claim_minutes),
           r.started_at
      FROM callback_request r
      LEFT JOIN agent a ON a.agent_id = r.claimed_by
      CROSS JOIN LATERAL sb_panel_callback_number(r.request_id) d
     WHERE r.status = 'open'
     ORDER BY r.requested_at
     LIMIT 200;
END $$;

-- Where a callback may be dialled: the caller's number when it is a registered
-- line, else the first registered line of the agency the caller claimed in the
-- IVR; otherwise nowhere.
CREATE FUNCTION sb_panel_callback_number(p_request_id bigint,
                                         OUT agency_id integer, OUT name text, OUT e164 text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r callback_request;
BEGIN
    SELECT * INTO r FROM callback_request WHERE request_id = p_request_id;
    SELECT g.agency_id, g.name, l.e164 INTO agency_id, name, e164
      FROM agency_line l JOIN agency g USING (agency_id)
     WHERE l.e164 = r.ani AND g.suspended_at IS NULL;
    IF NOT FOUND THEN
        SELECT g.agency_id, g.name, l.e164 INTO agency_id, name, e164
          FROM verify_attempt v JOIN agency g ON g.code = v.agency
          JOIN agency_line l ON l.agency_id = g.agency_id
         WHERE v.uniqueid = r.uniqueid AND g.suspended_at IS NULL
         ORDER BY v.started_at DESC, l.created_at, l.e164 LIMIT 1;
    END IF;
END $$;

-- Claim a request (one agent at a time; a claim left unworked for claim_minutes
-- lapses).  Returns claimed | taken | closed.
CREATE FUNCTION sb_panel_callback_claim(p_agent_id integer, p_request_id bigint)
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

-- Dial a claimed request: to its registered number only, rate-limited like the
-- verification calls.  outcome: started | refused (why).
CREATE FUNCTION sb_panel_callback_dial(p_agent_id integer, p_request_id bigint,
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

-- Close a claimed request with a disposition.  Returns closed | refused.
CREATE FUNCTION sb_panel_callback_close(p_agent_id integer, p_request_id bigint, p_code text,
                                        p_note text)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me  agent := sb_panel_agent_row(p_agent_id);
    r   callback_request;
BEGIN
    p_note := nullif(btrim(p_note), '');
    SELECT * INTO r FROM callback_request WHERE request_id = p_request_id FOR UPDATE;
    IF me.agent_id IS NULL OR r.request_id IS NULL OR r.status <> 'open'
       OR r.claimed_by IS DISTINCT FROM me.agent_id
       OR NOT sb_panel_disposition_ok(p_code)
       OR length(p_note) > 2000 THEN
        RETURN 'refused';
    END IF;
    UPDATE callback_request
       SET status = CASE WHEN p_code = 'not-reached' THEN 'failed' ELSE 'done' END,
           done_at = now(), disposition = p_code, note = p_note
     WHERE request_id = p_request_id;
    PERFORM sb_audit_append(sb_panel_actor(me), r.uniqueid, r.ani, NULL, NULL,
                            'callback-close', p_code,
                            format('request %s; %s', r.request_id,
                                   sb_panel_note_detail(p_note)));
    RETURN 'closed';
END $$;

-- For the wall board (sb_reports): open callback requests not started within
-- p_minutes, and the oldest one's age.
CREATE FUNCTION sb_callbacks_stale(p_minutes integer, OUT n bigint, OUT oldest_s integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT count(*), max(extract(epoch FROM now() - requested_at))::integer
      FROM callback_request
     WHERE status = 'open' AND started_at IS NULL
       AND requested_at < now() - make_interval(mins => p_minutes)
$$;

REVOKE ALL ON panel_session, disposition_code, call_disposition, oob_call, panel_policy
    FROM PUBLIC;
REVOKE ALL ON FUNCTION sb_panel_case_of(text), sb_panel_oob_spent(integer),
    sb_panel_disposition_ok(text), sb_panel_note_detail(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION sb_panel_agent_row(integer), sb_panel_verification(text),
    sb_panel_connected(agent, text, boolean), sb_panel_login_hash(text),
    sb_panel_login(text, boolean, bytea, integer, integer), sb_panel_session(bytea),
    sb_panel_logout(bytea), sb_panel_calls(integer), sb_panel_case(integer, text),
    sb_panel_case_lookup(integer, text, text), sb_panel_agencies(),
    sb_panel_oob_begin(integer, text, text), sb_panel_oob_result(bigint, text, boolean),
    sb_panel_oob_confirm(integer, bigint, boolean), sb_panel_dispositions(),
    sb_panel_dispose(integer, text, text, text), sb_panel_callbacks(integer),
    sb_panel_callback_number(bigint), sb_panel_callback_claim(integer, bigint),
    sb_panel_callback_dial(integer, bigint), sb_panel_callback_close(integer, bigint, text, text),
    sb_callbacks_stale(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_login_hash(text),
    sb_panel_login(text, boolean, bytea, integer, integer), sb_panel_session(bytea),
    sb_panel_logout(bytea), sb_panel_calls(integer), sb_panel_case(integer, text),
    sb_panel_case_lookup(integer, text, text), sb_panel_agencies(),
    sb_panel_oob_begin(integer, text, text), sb_panel_oob_result(bigint, text, boolean),
    sb_panel_oob_confirm(integer, bigint, boolean), sb_panel_dispositions(),
    sb_panel_dispose(integer, text, text, text), sb_panel_callbacks(integer),
    sb_panel_callback_claim(integer, bigint), sb_panel_callback_dial(integer, bigint),
    sb_panel_callback_close(integer, bigint, text, text) TO sb_panel;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_reports') THEN
        EXECUTE 'GRANT EXECUTE ON FUNCTION sb_callbacks_stale(integer) TO sb_reports';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_listener') THEN
        EXECUTE 'GRANT SELECT, INSERT, UPDATE ON queue_call TO sb_listener';
    END IF;
END $$;
