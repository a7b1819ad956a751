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


-- --- the panel (sb_panel): supervisors only ------------------------------------------


-- --- ops (the owner): purge and hold ------------------------------------------------


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
