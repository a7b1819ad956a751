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


-- --- login and sessions --------------------------------------------------------


-- --- the screen pop ----------------------------------------------------------------


-- --- out-of-band verification ----------------------------------------------------


-- --- dispositions -------------------------------------------------------------------


-- --- callbacks ------------------------------------------------------------------------


REVOKE ALL ON panel_session, disposition_code, call_disposition, oob_call, panel_policy
    FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_listener') THEN
        EXECUTE 'GRANT SELECT, INSERT, UPDATE ON queue_call TO sb_listener';
    END IF;
END $$;
