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

CREATE OR REPLACE FUNCTION sb_caller_id_words(p_uniqueid text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT coalesce((SELECT CASE c.result
        WHEN 'passed' THEN format('validated, attestation %s', coalesce(c.attest, 'not given'))
        WHEN 'failed' THEN 'VALIDATION FAILED: the number may be spoofed'
        WHEN 'not-validated' THEN 'not validated by the carrier (unsigned)'
        WHEN 'absent' THEN 'no validation result from the carrier'
        WHEN 'not-provided' THEN 'not checked (the carrier provides no validation)'
        WHEN 'unproven' THEN 'NOT FROM THE CARRIER''S CONNECTION: any validation ignored'
        ELSE 'could not be checked' END
      FROM caller_id_check c WHERE c.uniqueid = p_uniqueid), 'not checked')
$$;

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

-- A ban fail2ban placed: one open row per address and jail (a ban renewed
-- while it lasts moves its end).  Returns the row's id.
CREATE FUNCTION sb_edge_ban(p_address text, p_jail text, p_host text, p_seconds integer,
                            p_failures integer) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_id bigint;
    v_addr inet := p_address::inet;
BEGIN
    IF p_seconds IS NULL OR p_seconds NOT BETWEEN 1 AND 31536000 THEN
        RAISE EXCEPTION 'sb_edge_ban: a ban lasts 1 s to a year, not %', p_seconds;
    END IF;
    UPDATE sip_ban SET until = now() + make_interval(secs => p_seconds),
                       failures = greatest(failures, p_failures)
     WHERE address = v_addr AND jail = p_jail AND lifted_at IS NULL AND until > now()
    RETURNING ban_id INTO v_id;
    IF v_id IS NULL THEN
        INSERT INTO sip_ban (address, jail, host, failures, until)
        VALUES (v_addr, p_jail, p_host, p_failures, now() + make_interval(secs => p_seconds))
        RETURNING ban_id INTO v_id;
    END IF;
    PERFORM sb_audit_append('edge:' || p_host, NULL, NULL, NULL, NULL, 'sip-ban', 'banned',
                            format('%s jail %s for %s s after %s failures', host(v_addr),
                                   p_jail, p_seconds, coalesce(p_failures::text, '?')));
    RETURN v_id;
END $$;

-- A ban lifted (its time ran out, or ops lifted it).  Returns the rows closed.
CREATE FUNCTION sb_edge_unban(p_address text, p_jail text, p_host text, p_by text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    n integer;
    v_addr inet := p_address::inet;
BEGIN
    UPDATE sip_ban SET lifted_at = now(), lifted_by = p_by
     WHERE address = v_addr AND jail = p_jail AND lifted_at IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN  -- ops lift a ban first, then fail2ban's action says it again
        PERFORM sb_audit_append('edge:' || p_host, NULL, NULL, NULL, NULL, 'sip-unban',
                                'lifted', format('%s jail %s by %s', host(v_addr), p_jail,
                                                 p_by));
    END IF;
    RETURN n;
END $$;

-- Bans in force now (the nftables set lets each run out by itself too).
CREATE FUNCTION sb_edge_bans()
RETURNS TABLE (address text, jail text, host text, failures integer, banned_at timestamptz,
               until timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT host(b.address), b.jail, b.host, b.failures, b.banned_at, b.until
      FROM sip_ban b WHERE b.lifted_at IS NULL AND b.until > now()
     ORDER BY b.banned_at
$$;

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

-- Grant or refuse one outbound call.  p_legs: this node's outbound legs now,
-- this one included (GROUP_COUNT); p_max_legs: the node's cap.  Refused when
-- over the cap (legs), when the number is not an active agency's registered
-- line (number), or when less than a minute is left of the hour's budget
-- (minutes).  Every answer is audited; a refusal notifies the wall board.
CREATE FUNCTION sb_agi_outbound_begin(p_node text, p_uniqueid text, p_purpose text,
    p_number text, p_legs integer, p_max_legs integer,
    OUT outcome text, OUT reason text, OUT leg_id bigint, OUT grant_s integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    pol outbound_policy;
    v_spent bigint;
    v_number text := CASE WHEN p_number ~ '^\+[1-9][0-9]{6,14}$' THEN p_number END;
BEGIN
    SELECT * INTO pol FROM outbound_policy;
    -- one decision at a time for the whole line: two nodes cannot both spend
    -- the last minutes
    PERFORM pg_advisory_xact_lock(hashtext('sb_outbound_budget'));
    SELECT coalesce(sum(coalesce(l.used_s, l.granted_s)), 0) INTO v_spent
      FROM outbound_leg l
     WHERE l.outcome = 'granted' AND l.started_at > now() - interval '1 hour';
    grant_s := least(pol.call_max_minutes * 60, pol.minutes_per_hour * 60 - v_spent)::integer;
    reason := CASE
        WHEN p_legs IS NULL OR p_max_legs IS NULL OR p_legs > p_max_legs THEN 'legs'
        WHEN v_number IS NULL OR NOT EXISTS (
            SELECT 1 FROM agency_line l JOIN agency g USING (agency_id)
             WHERE l.e164 = v_number AND g.suspended_at IS NULL) THEN 'number'
        WHEN grant_s < 60 THEN 'minutes'
    END;
    outcome := CASE WHEN reason IS NULL THEN 'granted' ELSE 'refused' END;
    IF outcome = 'refused' THEN
        grant_s := 0;
    END IF;
    INSERT INTO outbound_leg (node, uniqueid, purpose, number, outcome, reason, granted_s)
    VALUES (p_node, left(p_uniqueid, 150), p_purpose, v_number, outcome, reason, grant_s)
    RETURNING outbound_leg.leg_id INTO leg_id;
    PERFORM sb_audit_append('agi', left(p_uniqueid, 150), NULL, NULL, NULL, 'outbound',
                            outcome,
                            format('%s to %s: leg %s, %s of %s legs, %s s granted, %s of %s '
                                   'min this hour spent%s', p_purpose,
                                   coalesce(v_number, 'an invalid number'), leg_id, p_legs,
                                   p_max_legs, grant_s, v_spent / 60, pol.minutes_per_hour,
                                   coalesce(' (' || reason || ')', '')));
    IF outcome = 'refused' THEN
        PERFORM pg_notify('sb_live', 'outbound');
    END IF;
END $$;

-- What a granted call used (ANSWEREDTIME at hangup): from now on it counts that
-- much, not its grant.  Returns recorded | unknown.
CREATE FUNCTION sb_agi_outbound_end(p_leg_id bigint, p_uniqueid text, p_answered_s integer)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE outbound_leg
       SET used_s = least(greatest(coalesce(p_answered_s, 0), 0), granted_s), ended_at = now()
     WHERE leg_id = p_leg_id AND uniqueid = left(p_uniqueid, 150) AND outcome = 'granted'
       AND ended_at IS NULL;
    RETURN CASE WHEN FOUND THEN 'recorded' ELSE 'unknown' END;
END $$;

-- 4. 911 --------------------------------------------------------------------------------
-- The audit row of a 911 call, written by its hangup handler.  Returns recorded.
CREATE FUNCTION sb_agi_emergency(p_node text, p_uniqueid text, p_phone text, p_elin text,
                                 p_place text, p_status text, p_answered_s integer)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM sb_audit_append('agi', left(p_uniqueid, 150), NULL, NULL, NULL, 'emergency-911',
                            coalesce(nullif(lower(left(p_status, 20)), ''), 'unknown'),
                            format('phone %s on %s, callback %s, place %s, answered %s s',
                                   left(p_phone, 40), left(p_node, 63), left(p_elin, 20),
                                   left(p_place, 200), coalesce(p_answered_s, 0)));
    PERFORM pg_notify('sb_live', 'emergency');
    RETURN 'recorded';
END $$;

-- 5. what the wall board shows ----------------------------------------------------------
-- Security events Asterisk sends over AMI that say someone failed (the
-- listener stores them; ChallengeSent and SuccessfulAuth are filtered out on
-- the AMI user), and the dialplan's SBEmergency and SBOutbound UserEvents.
CREATE INDEX ami_event_edge_idx ON ami_event (event_time)
    WHERE event IN ('InvalidAccountID', 'ChallengeResponseFailed', 'InvalidPassword',
                    'FailedACL', 'UnexpectedAddress', 'RequestBadFormat',
                    'RequestNotAllowed', 'AuthMethodNotAllowed', 'InvalidTransport')
       OR (event = 'UserEvent' AND fields->>'UserEvent' = 'SBEmergency');

-- Failed authentications since p_since, by address (the one place that says
-- which security events are failures; the index above holds the same list).
CREATE FUNCTION sb_edge_failures(p_since timestamptz)
RETURNS TABLE (address text, failures bigint, last_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT split_part(e.fields->>'RemoteAddress', '/', 3), count(*), max(e.event_time)
      FROM ami_event e
     WHERE e.event_time >= p_since
       AND e.event IN ('InvalidAccountID', 'ChallengeResponseFailed', 'InvalidPassword',
                       'FailedACL', 'UnexpectedAddress', 'RequestBadFormat',
                       'RequestNotAllowed', 'AuthMethodNotAllowed', 'InvalidTransport')
     GROUP BY 1
$$;

-- The edge's figures since p_since: failed authentications (and from how many
-- addresses), bans in force and placed, outbound calls granted and refused,
-- this hour's outbound minutes against the budget, 911 calls.
CREATE FUNCTION sb_edge_figures(p_since timestamptz,
    OUT auth_failures bigint, OUT failing_addresses bigint, OUT bans_now bigint,
    OUT bans_since bigint, OUT outbound_granted bigint, OUT outbound_refused bigint,
    OUT outbound_minutes_hour bigint, OUT minutes_per_hour integer,
    OUT emergency_calls bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH f AS (SELECT coalesce(sum(x.failures), 0)::bigint AS n, count(*) AS addresses
                 FROM sb_edge_failures(p_since) x)
    SELECT f.n, f.addresses,
           (SELECT count(*) FROM sip_ban b WHERE b.lifted_at IS NULL AND b.until > now()),
           (SELECT count(*) FROM sip_ban b WHERE b.banned_at >= p_since),
           (SELECT count(*) FROM outbound_leg l WHERE l.started_at >= p_since
               AND l.outcome = 'granted'),
           (SELECT count(*) FROM outbound_leg l WHERE l.started_at >= p_since
               AND l.outcome = 'refused'),
           (SELECT coalesce(sum(coalesce(l.used_s, l.granted_s)), 0) / 60 FROM outbound_leg l
             WHERE l.outcome = 'granted' AND l.started_at > now() - interval '1 hour'),
           (SELECT p.minutes_per_hour FROM outbound_policy p),
           (SELECT count(*) FROM ami_event e WHERE e.event_time >= p_since
               AND e.event = 'UserEvent' AND e.fields->>'UserEvent' = 'SBEmergency'
               AND e.fields->>'Step' = 'dial')
      FROM f
$$;

-- The 911 calls since p_since, newest first, each with its end when known.
CREATE FUNCTION sb_edge_emergencies(p_since timestamptz)
RETURNS TABLE (node text, uniqueid text, phone text, place text, elin text,
               started_at timestamptz, ended_at timestamptz, status text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT d.node, d.uniqueid, left(d.fields->>'Phone', 40), left(d.fields->>'Place', 200),
           left(d.fields->>'Elin', 20), d.event_time, e.event_time,
           left(e.fields->>'Status', 20)
      FROM ami_event d
      LEFT JOIN LATERAL (
          SELECT x.event_time, x.fields FROM ami_event x
           WHERE x.event_time >= d.event_time AND x.node = d.node
             AND x.uniqueid = d.uniqueid AND x.event = 'UserEvent'
             AND x.fields->>'UserEvent' = 'SBEmergency' AND x.fields->>'Step' = 'end'
           LIMIT 1) e ON true
     WHERE d.event_time >= p_since AND d.event = 'UserEvent'
       AND d.fields->>'UserEvent' = 'SBEmergency' AND d.fields->>'Step' = 'dial'
     ORDER BY d.event_time DESC LIMIT 20
$$;

-- The ten addresses failing most since p_since.
CREATE FUNCTION sb_edge_failing(p_since timestamptz)
RETURNS TABLE (address text, failures bigint, last_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT * FROM sb_edge_failures(p_since) f ORDER BY f.failures DESC, f.address LIMIT 10
$$;

-- The wall board follows bans as it follows calls.
CREATE FUNCTION sb_edge_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sb_live', 'edge');
    RETURN NULL;
END $$;
CREATE TRIGGER sip_ban_notify AFTER INSERT OR UPDATE ON sip_ban
    FOR EACH STATEMENT EXECUTE FUNCTION sb_edge_notify();

REVOKE ALL ON sip_ban, outbound_policy, outbound_leg FROM PUBLIC;
REVOKE ALL ON FUNCTION sb_edge_ban(text, text, text, integer, integer),
    sb_edge_unban(text, text, text, text), sb_edge_bans(),
    sb_agi_outbound_begin(text, text, text, text, integer, integer),
    sb_agi_outbound_end(bigint, text, integer),
    sb_agi_emergency(text, text, text, text, text, text, integer),
    sb_edge_failures(timestamptz), sb_edge_figures(timestamptz),
    sb_edge_emergencies(timestamptz), sb_edge_failing(timestamptz), sb_edge_notify()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_edge_ban(text, text, text, integer, integer),
    sb_edge_unban(text, text, text, text), sb_edge_bans() TO sb_edge;
GRANT EXECUTE ON FUNCTION sb_agi_outbound_begin(text, text, text, text, integer, integer),
    sb_agi_outbound_end(bigint, text, integer),
    sb_agi_emergency(text, text, text, text, text, text, integer) TO sb_agi;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_reports') THEN
        EXECUTE 'GRANT EXECUTE ON FUNCTION sb_edge_figures(timestamptz), '
                'sb_edge_emergencies(timestamptz), sb_edge_failing(timestamptz), '
                'sb_edge_bans() TO sb_reports';
    END IF;
END $$;
