-- The supervisor's side (issue 24): recordings kept encrypted and indexed by
-- call, played back by supervisors only, purged after the site's retention
-- unless under a legal hold; listening in on agents' calls; all audited.
--
-- 1. recording: one row per recorded leg (an agent's part of a queue call),
--    written by the recordings shipper on the Asterisk node (`switchboard
--    recordings ship`, role sb_recorder, which may only call sb_recorder_*).
--    The file in the store is age-encrypted to the site's public key; its
--    SHA-256 is in the row and in the call's audit chain (action
--    recording-stored), so `switchboard audit verify --recordings` finds a
--    replaced or edited file.
-- 2. legal_hold: a call whose recordings no purge may delete.
-- 3. recording_ticket: one playback, for one supervisor's session, within a
--    minute: the panel hands the browser an opaque ticket (only its hash is
--    kept), the audio element streams it once, and the play is audited.
-- 4. spy_session: a supervisor listening to (or coaching, or joining) an
--    agent's call through ChanSpy; its start and end are audited.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_recorder') THEN
        BEGIN
            CREATE ROLE sb_recorder NOLOGIN;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'role sb_recorder does not exist and % may not create it: run '
                'CREATE ROLE sb_recorder LOGIN; as a superuser', current_user;
        END;
    END IF;
END $$;

CREATE TABLE recording (
    recording_id bigserial PRIMARY KEY,
    uniqueid     text NOT NULL CHECK (uniqueid ~ '^[A-Za-z0-9_.-]{1,150}$'),
    leg          text NOT NULL CHECK (leg ~ '^[A-Za-z0-9_.-]{1,150}$'),
    node         text NOT NULL CHECK (length(node) BETWEEN 1 AND 80),
    store_key    text NOT NULL UNIQUE CHECK (store_key ~ '^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$'
                                             AND store_key !~ '(^|/)\.\.?(/|$)'
                                             AND length(store_key) <= 400),
    bytes        bigint NOT NULL CHECK (bytes > 0),
    sha256       bytea NOT NULL CHECK (length(sha256) = 32),
    seconds      numeric(9, 2) NOT NULL CHECK (seconds >= 0),
    format       text NOT NULL CHECK (format IN ('opus')),
    started_at   timestamptz NOT NULL,
    stored_at    timestamptz NOT NULL DEFAULT now(),
    purged_at    timestamptz,
    UNIQUE (uniqueid, leg)
);
CREATE INDEX recording_call_idx ON recording (uniqueid);
CREATE INDEX recording_kept_idx ON recording (started_at) WHERE purged_at IS NULL;
REVOKE ALL ON recording FROM PUBLIC;

CREATE TABLE legal_hold (
    uniqueid  text PRIMARY KEY CHECK (uniqueid ~ '^[A-Za-z0-9_.-]{1,150}$'),
    reason    text NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
    held_by   text NOT NULL CHECK (length(held_by) BETWEEN 1 AND 100),
    held_at   timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON legal_hold FROM PUBLIC;

CREATE TABLE recording_ticket (
    token_hash   bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    recording_id bigint NOT NULL REFERENCES recording,
    agent_id     integer NOT NULL REFERENCES agent,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz
);
REVOKE ALL ON recording_ticket FROM PUBLIC;

CREATE TABLE spy_session (
    spy_id       bigserial PRIMARY KEY,
    agent_id     integer NOT NULL REFERENCES agent,      -- the supervisor
    target_id    integer NOT NULL REFERENCES agent,      -- the agent listened to
    uniqueid     text NOT NULL,                          -- the call
    mode         text NOT NULL CHECK (mode IN ('listen', 'whisper', 'barge')),
    requested_at timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    ended_at     timestamptz,
    result       text CHECK (result IN ('ended', 'not-answered', 'failed', 'unknown'))
);
CREATE INDEX spy_session_open_idx ON spy_session (agent_id) WHERE ended_at IS NULL;
REVOKE ALL ON spy_session FROM PUBLIC;

-- --- the shipper (sb_recorder) -------------------------------------------------------

-- A recording stored: index it and put its digest in the call's audit chain.
-- Storing the same file again (a retry after the answer was lost) is a no-op;
-- another file under the same key is refused.
CREATE FUNCTION sb_recorder_stored(p_uniqueid text, p_leg text, p_node text, p_key text,
                                   p_bytes bigint, p_sha256 bytea, p_seconds numeric,
                                   p_started timestamptz)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    had recording;
BEGIN
    SELECT * INTO had FROM recording WHERE store_key = p_key;
    IF FOUND THEN
        IF had.sha256 = p_sha256 THEN
            RETURN 'known';
        END IF;
        RAISE EXCEPTION 'sb_recorder_stored: % is already stored with another digest', p_key;
    END IF;
    INSERT INTO recording (uniqueid, leg, node, store_key, bytes, sha256, seconds, format,
                           started_at)
    VALUES (p_uniqueid, p_leg, p_node, p_key, p_bytes, p_sha256, round(p_seconds, 2), 'opus',
            p_started);
    PERFORM sb_audit_append('recorder:' || left(p_node, 80), p_uniqueid, NULL, NULL, NULL,
                            'recording-stored', 'ok',
                            encode(p_sha256, 'hex') || ' ' || right(p_key, 130));
    RETURN 'stored';
END $$;

-- --- the panel (sb_panel): supervisors only ------------------------------------------

-- The recorded calls a supervisor may play: the newest first, or one call's.
CREATE FUNCTION sb_panel_recordings(p_agent_id integer, p_uniqueid text, p_limit integer)
RETURNS TABLE (recording_id bigint, uniqueid text, queue text, member_name text,
               started_at timestamptz, seconds numeric, bytes bigint, held boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me agent := sb_panel_agent_row(p_agent_id);
BEGIN
    IF me.agent_id IS NULL OR me.role <> 'supervisor' THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT r.recording_id, r.uniqueid, q.queue, q.member_name, r.started_at, r.seconds,
           r.bytes, EXISTS (SELECT 1 FROM legal_hold h WHERE h.uniqueid = r.uniqueid)
      FROM recording r
      LEFT JOIN LATERAL (SELECT c.queue, c.member_name FROM queue_call c
                          WHERE c.uniqueid = r.uniqueid AND c.answered_at IS NOT NULL
                          ORDER BY c.answered_at DESC LIMIT 1) q ON true
     WHERE r.purged_at IS NULL AND (p_uniqueid IS NULL OR r.uniqueid = p_uniqueid)
     ORDER BY r.started_at DESC
     LIMIT least(greatest(p_limit, 1), 200);
END $$;

-- A ticket for one playback (refused: not a supervisor, or no such recording).
CREATE FUNCTION sb_panel_recording_ticket(p_agent_id integer, p_recording_id bigint,
                                          p_token_hash bytea)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me agent := sb_panel_agent_row(p_agent_id);
BEGIN
    IF me.agent_id IS NULL OR me.role <> 'supervisor' THEN
        PERFORM sb_audit_append(sb_panel_actor(me), NULL, NULL, NULL, NULL,
                                'recording-played', 'refused', 'not a supervisor');
        RETURN 'refused';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM recording WHERE recording_id = p_recording_id
                                              AND purged_at IS NULL) THEN
        RETURN 'gone';
    END IF;
    DELETE FROM recording_ticket WHERE expires_at < now() - interval '1 hour';
    INSERT INTO recording_ticket (token_hash, recording_id, agent_id, expires_at)
    VALUES (p_token_hash, p_recording_id, p_agent_id, now() + interval '60 seconds');
    RETURN 'ok';
END $$;

-- Spend a ticket (once, by the session that asked for it): the play is audited
-- and the panel learns where the file is and what its digest must be.
CREATE FUNCTION sb_panel_recording_play(p_agent_id integer, p_token_hash bytea)
RETURNS TABLE (outcome text, uniqueid text, store_key text, sha256 bytea, seconds numeric)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me agent := sb_panel_agent_row(p_agent_id);
    t  recording_ticket;
    r  recording;
BEGIN
    UPDATE recording_ticket k SET used_at = now()
     WHERE k.token_hash = p_token_hash AND k.agent_id = p_agent_id AND k.used_at IS NULL
       AND k.expires_at > now()
    RETURNING * INTO t;
    IF NOT FOUND OR me.agent_id IS NULL OR me.role <> 'supervisor' THEN
        RETURN QUERY SELECT 'refused'::text, NULL::text, NULL::text, NULL::bytea,
                            NULL::numeric;
        RETURN;
    END IF;
    SELECT * INTO r FROM recording x WHERE x.recording_id = t.recording_id
                                       AND x.purged_at IS NULL;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'gone'::text, NULL::text, NULL::text, NULL::bytea, NULL::numeric;
        RETURN;
    END IF;
    PERFORM sb_audit_append(sb_panel_actor(me), r.uniqueid, NULL, NULL, NULL,
                            'recording-played', 'ok', 'recording ' || r.recording_id);
    RETURN QUERY SELECT 'ok'::text, r.uniqueid, r.store_key, r.sha256, r.seconds;
END $$;

-- The panel could not play what the database handed out (a missing or altered
-- file): audited, so the supervisor's complaint has a row.
CREATE FUNCTION sb_panel_recording_failed(p_agent_id integer, p_uniqueid text,
                                          p_why text)
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT sb_audit_append(sb_panel_actor(sb_panel_agent_row(p_agent_id)), p_uniqueid, NULL,
                           NULL, NULL, 'recording-played', 'failed', left(p_why, 200))
$$;

-- A supervisor asks to listen to an agent's call in progress.  Returns the
-- session and what to ring (the supervisor's phone) and spy on (the agent's
-- interface), or why not.
CREATE FUNCTION sb_panel_spy_begin(p_agent_id integer, p_uniqueid text, p_mode text)
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

-- What became of it: the supervisor's phone answered (started), and later
-- hung up (ended); or it never answered, or the call could not be placed.
CREATE FUNCTION sb_panel_spy_state(p_spy_id bigint, p_state text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    s  spy_session;
    me agent;
BEGIN
    IF p_state NOT IN ('started', 'ended', 'not-answered', 'failed', 'unknown') THEN
        RAISE EXCEPTION 'sb_panel_spy_state: state %', p_state;
    END IF;
    SELECT * INTO s FROM spy_session WHERE spy_id = p_spy_id AND ended_at IS NULL
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT * INTO me FROM agent WHERE agent_id = s.agent_id;
    IF p_state = 'started' THEN
        UPDATE spy_session SET started_at = now() WHERE spy_id = p_spy_id;
        PERFORM sb_audit_append(sb_panel_actor(me), s.uniqueid, NULL, NULL, NULL,
                                'spy-start', 'ok', s.mode || ' session ' || s.spy_id);
    ELSE
        UPDATE spy_session SET ended_at = now(), result = p_state WHERE spy_id = p_spy_id;
        PERFORM sb_audit_append(sb_panel_actor(me), s.uniqueid, NULL, NULL, NULL,
                                'spy-end', p_state, s.mode || ' session ' || s.spy_id);
    END IF;
END $$;

-- At the panel's start: sessions a stopped panel left open end as unknown.
CREATE FUNCTION sb_panel_spy_orphans() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN SELECT spy_id FROM spy_session WHERE ended_at IS NULL LOOP
        PERFORM sb_panel_spy_state(r.spy_id, 'unknown');
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- An agent hands the call on (the panel's transfer button): the call must be
-- theirs and in progress; audited.
CREATE FUNCTION sb_panel_transfer(p_agent_id integer, p_uniqueid text, p_target text)
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

-- --- ops (the owner): purge and hold ------------------------------------------------

-- Recordings older than the retention, not under a legal hold, oldest first.
CREATE FUNCTION sb_recordings_expired(p_days integer, p_limit integer)
RETURNS TABLE (recording_id bigint, uniqueid text, store_key text, started_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT r.recording_id, r.uniqueid, r.store_key, r.started_at
      FROM recording r
     WHERE r.purged_at IS NULL AND r.started_at < now() - make_interval(days => p_days)
       AND NOT EXISTS (SELECT 1 FROM legal_hold h WHERE h.uniqueid = r.uniqueid)
     ORDER BY r.started_at
     LIMIT p_limit
$$;

CREATE FUNCTION sb_recording_purged(p_recording_id bigint, p_actor text, p_days integer)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    r recording;
BEGIN
    UPDATE recording SET purged_at = now()
     WHERE recording_id = p_recording_id AND purged_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM legal_hold h WHERE h.uniqueid = recording.uniqueid)
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM sb_audit_append(p_actor, r.uniqueid, NULL, NULL, NULL, 'recording-purged', 'ok',
                            encode(r.sha256, 'hex') || ' older than ' || p_days || ' days');
    RETURN true;
END $$;

REVOKE ALL ON FUNCTION sb_recorder_stored(text, text, text, text, bigint, bytea, numeric,
                                          timestamptz),
    sb_panel_recordings(integer, text, integer),
    sb_panel_recording_ticket(integer, bigint, bytea),
    sb_panel_recording_play(integer, bytea),
    sb_panel_recording_failed(integer, text, text),
    sb_panel_spy_begin(integer, text, text), sb_panel_spy_state(bigint, text),
    sb_panel_spy_orphans(), sb_panel_transfer(integer, text, text),
    sb_recordings_expired(integer, integer), sb_recording_purged(bigint, text, integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_recorder_stored(text, text, text, text, bigint, bytea, numeric,
                                             timestamptz) TO sb_recorder;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_panel') THEN
        EXECUTE 'GRANT EXECUTE ON FUNCTION sb_panel_recordings(integer, text, integer), '
                'sb_panel_recording_ticket(integer, bigint, bytea), '
                'sb_panel_recording_play(integer, bytea), '
                'sb_panel_recording_failed(integer, text, text), '
                'sb_panel_spy_begin(integer, text, text), sb_panel_spy_state(bigint, text), '
                'sb_panel_spy_orphans(), sb_panel_transfer(integer, text, text) TO sb_panel';
    END IF;
END $$;

-- --- reports (sb_reports): counts only, never a number or a name ----------------
-- The mix of a range's calls beside the queue figures (`switchboard report`, the
-- reports page): how callers were verified (each call's last finished
-- attempt), what their caller ID's check found, callback requests by state,
-- dispositions by code, transfers by target.
-- each part reads its range through an index: a day's page at 100x touches a
-- day's rows, not the year's
CREATE INDEX verify_attempt_finished_idx ON verify_attempt (finished_at)
    WHERE outcome IS NOT NULL;
CREATE INDEX callback_request_requested_idx ON callback_request (requested_at);
CREATE INDEX call_disposition_saved_idx ON call_disposition (saved_at);
CREATE INDEX queue_call_transferred_idx ON queue_call (entered_at)
    WHERE outcome = 'transferred';

CREATE FUNCTION sb_report_mix(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (part text, kind text, n bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT 'verification', v.outcome, count(*)
      FROM (SELECT DISTINCT ON (uniqueid) uniqueid, outcome FROM verify_attempt
             WHERE finished_at >= p_from AND finished_at < p_to AND outcome IS NOT NULL
             ORDER BY uniqueid, finished_at DESC) v
     GROUP BY v.outcome
    UNION ALL
    SELECT 'caller_id', CASE WHEN result = 'passed' AND attest = 'A' THEN 'attested-a'
                             WHEN result = 'passed' THEN 'attested-bc'
                             WHEN result = 'failed' THEN 'failed'
                             ELSE 'not-attested' END, count(*)
      FROM caller_id_check WHERE checked_at >= p_from AND checked_at < p_to
     GROUP BY 2
    UNION ALL
    SELECT 'callbacks', status, count(*) FROM callback_request
     WHERE requested_at >= p_from AND requested_at < p_to GROUP BY status
    UNION ALL
    SELECT 'dispositions', code, count(*) FROM call_disposition
     WHERE saved_at >= p_from AND saved_at < p_to GROUP BY code
    UNION ALL
    SELECT 'transfers', coalesce(split_part(transfer_target, '@', 1), 'unknown'), count(*)
      FROM queue_call
     WHERE outcome = 'transferred' AND entered_at >= p_from AND entered_at < p_to
     GROUP BY 2
    ORDER BY 1, 2
$$;
REVOKE ALL ON FUNCTION sb_report_mix(timestamptz, timestamptz) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_reports') THEN
        EXECUTE 'GRANT EXECUTE ON FUNCTION sb_report_mix(timestamptz, timestamptz) '
                'TO sb_reports';
    END IF;
END $$;
