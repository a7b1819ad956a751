-- The SIP edge (issue 22): the carrier proven by where its calls arrive, bans
-- of addresses that guess passwords, outbound calls bounded, 911 audited.
--
-- 1. A call matched to the carrier that did not arrive on the carrier's own
--    transport (its TLS connection, or the port the shipped firewall opens to
--    the carrier's addresses alone) is `unproven`: the dialplan passes
--    SB_ATTEST=unproven, its verstat is never read, and the call counts as not
--    attested (sb_caller_id_kind, sb_caller_id_counts: the ELSE branches).
-- 2. sip_ban: what fail2ban banned and lifted (its action runs `switchboard
--    edge record`, as the role sb_edge, which may only call sb_edge_*).  The
--    ban itself is the nftables set's; these rows make it visible (wall board,
--    metric) and audited.
-- 3. outbound_leg: every call the line places to the carrier (never 911):
--    granted or refused by sb_agi_outbound_begin, against this node's leg cap
--    (counted by the dialplan, GROUP_COUNT) and the line's hourly minutes
--    (outbound_policy).  A grant counts in full until sb_agi_outbound_end says
--    what was used.  Refusals are audited and shown on the wall board.
-- 4. 911 calls: sb_agi_emergency writes the audit row when the call ends; the
--    wall board's alert comes from the SBEmergency UserEvent the listener
--    stores the moment the call is dialled (sb_edge_figures).

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_edge') THEN
        BEGIN
            CREATE ROLE sb_edge NOLOGIN;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'role sb_edge does not exist and % may not create it: run '
                'CREATE ROLE sb_edge LOGIN; as a superuser', current_user;
        END;
    END IF;
END $$;

-- 1. unproven carrier calls --------------------------------------------------------
ALTER TABLE caller_id_check DROP CONSTRAINT caller_id_check_source_check,
    ADD CONSTRAINT caller_id_check_source_check
        CHECK (source IN ('verstat', 'verstat-a', 'identity', 'none', 'unproven'));
ALTER TABLE caller_id_check DROP CONSTRAINT caller_id_check_result_check,
    ADD CONSTRAINT caller_id_check_result_check
        CHECK (result IN ('passed', 'failed', 'not-validated', 'absent', 'not-provided',
                          'error', 'unproven'));

-- 2. bans ----------------------------------------------------------------------------
CREATE TABLE sip_ban (
    ban_id     bigserial PRIMARY KEY,
    address    inet NOT NULL,
    jail       text NOT NULL CHECK (jail ~ '^[A-Za-z0-9_.-]{1,40}$'),
    host       text NOT NULL CHECK (host ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    failures   integer CHECK (failures BETWEEN 0 AND 1000000),
    banned_at  timestamptz NOT NULL DEFAULT now(),
    until      timestamptz NOT NULL,
    lifted_at  timestamptz,
    lifted_by  text CHECK (lifted_by ~ '^[A-Za-z0-9_.:@-]{1,60}$')
);
CREATE INDEX sip_ban_open_idx ON sip_ban (address) WHERE lifted_at IS NULL;
CREATE INDEX sip_ban_at_idx ON sip_ban (banned_at);

-- 3. outbound calls --------------------------------------------------------------------
CREATE TABLE outbound_policy (
    singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- the line's outbound minutes per hour (a grant counts from its start)
    minutes_per_hour integer NOT NULL DEFAULT 120 CHECK (minutes_per_hour BETWEEN 0 AND 1000000),
    -- the most one call may be granted
    call_max_minutes integer NOT NULL DEFAULT 30 CHECK (call_max_minutes BETWEEN 1 AND 600)
);
INSERT INTO outbound_policy DEFAULT VALUES;

CREATE TABLE outbound_leg (
    leg_id     bigserial PRIMARY KEY,
    node       text NOT NULL CHECK (node ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    uniqueid   text NOT NULL CHECK (length(uniqueid) <= 150),
    purpose    text NOT NULL CHECK (purpose IN ('panel', 'desk-phone')),
    number     text CHECK (number ~ '^\+[1-9][0-9]{6,14}$'),
    started_at timestamptz NOT NULL DEFAULT now(),
    outcome    text NOT NULL CHECK (outcome IN ('granted', 'refused')),
    reason     text CHECK (reason IN ('legs', 'minutes', 'number')),
    granted_s  integer NOT NULL DEFAULT 0 CHECK (granted_s >= 0),
    used_s     integer CHECK (used_s >= 0),
    ended_at   timestamptz
);
CREATE INDEX outbound_leg_started_idx ON outbound_leg (started_at);

-- 5. what the wall board shows ----------------------------------------------------------
-- Security events Asterisk sends over AMI that say someone failed (the
-- listener stores them; ChallengeSent and SuccessfulAuth are filtered out on
-- the AMI user), and the dialplan's SBEmergency and SBOutbound UserEvents.
CREATE INDEX ami_event_edge_idx ON ami_event (event_time)
    WHERE event IN ('InvalidAccountID', 'ChallengeResponseFailed', 'InvalidPassword',
                    'FailedACL', 'UnexpectedAddress', 'RequestBadFormat',
                    'RequestNotAllowed', 'AuthMethodNotAllowed', 'InvalidTransport')
       OR (event = 'UserEvent' AND fields->>'UserEvent' = 'SBEmergency');

REVOKE ALL ON sip_ban, outbound_policy, outbound_leg FROM PUBLIC;
