-- Verification that trusts nobody (issue 11).  The database decides; the AGI
-- service only reports what it observed (was the PIN right for the hash it was
-- given).  Replaces sb_agi_verify_begin/_finish and sb_agi_lookup of 0003:
--
--   1. sb_agi_attempt_begin (its own transaction, committed): checks the
--      calling number's throttle and the claimed officer's lock, counts the
--      attempt as a failure now, records it in verify_attempt, and returns its id.
--   2. sb_agi_attempt_hash (a later transaction): the PIN hash, only for a
--      committed attempt (so no rollback can hide an attempt that saw a hash).
--   3. sb_agi_attempt_finish: only for that attempt (same call, unfinished, not
--      too old); a right PIN clears the failure counted at step 1.
--
-- Policy (limits, lock time, throttle, lookup window) is here, in
-- verify_policy, not in the caller's arguments.  Known and unknown officer ids
-- behave alike: an unknown claim has a counter and a lock of its own
-- (verify_claim), so the 5th wrong PIN answers 'locked' either way.

CREATE TABLE verify_policy (
    id                    boolean PRIMARY KEY DEFAULT true CHECK (id),
    max_failures          integer NOT NULL DEFAULT 5 CHECK (max_failures BETWEEN 1 AND 100),
    lock_minutes          integer NOT NULL DEFAULT 30 CHECK (lock_minutes BETWEEN 1 AND 10080),
    ani_max_failures      integer NOT NULL DEFAULT 10
                          CHECK (ani_max_failures BETWEEN 1 AND 10000),
    ani_block_minutes     integer NOT NULL DEFAULT 60
                          CHECK (ani_block_minutes BETWEEN 1 AND 10080),
    attempt_ttl_s         integer NOT NULL DEFAULT 120 CHECK (attempt_ttl_s BETWEEN 5 AND 3600),
    lookup_window_minutes integer NOT NULL DEFAULT 30
                          CHECK (lookup_window_minutes BETWEEN 1 AND 1440),
    lookup_max            integer NOT NULL DEFAULT 3 CHECK (lookup_max BETWEEN 1 AND 50),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
INSERT INTO verify_policy DEFAULT VALUES;

-- Failures against claimed officer ids that do not exist (or cannot be verified):
-- the same counter and lock as an officer's, so the answers are the same.
CREATE TABLE verify_claim (
    agency       text NOT NULL,
    officer      text NOT NULL,
    failed_count integer NOT NULL DEFAULT 0,
    locked_until timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agency, officer)
);

-- One row per verification attempt.  begun_xid: the transaction that began it
-- (the hash is refused to that same transaction: it could still roll back).
CREATE TABLE verify_attempt (
    attempt_id    bigserial PRIMARY KEY,
    uniqueid      text NOT NULL,
    channel       text NOT NULL,
    ani           text NOT NULL,
    agency        text NOT NULL,
    officer       text NOT NULL,
    officer_id    integer REFERENCES officer,
    status        text NOT NULL CHECK (status IN ('ok', 'unknown', 'locked', 'throttled')),
    line_ok       boolean NOT NULL,
    failures      integer NOT NULL DEFAULT 0,  -- the claim's count with this attempt
    begun_xid     bigint NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    hash_given_at timestamptz,
    finished_at   timestamptz,
    outcome       text,
    lookups       integer NOT NULL DEFAULT 0
);
CREATE INDEX verify_attempt_uniqueid_idx ON verify_attempt (uniqueid, finished_at);
CREATE INDEX verify_attempt_open_idx ON verify_attempt (officer_id, started_at)
    WHERE finished_at IS NULL;

CREATE FUNCTION sb_agi_attempt_begin(p_uniqueid text, p_channel text, p_ani text,
                                     p_agency text, p_officer text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    pol       verify_policy;
    o         record;
    c         verify_claim;
    v_known   boolean := false;
    v_status  text;
    v_count   integer;
    v_locked  timestamptz;
    v_line    boolean := false;
    v_id      bigint;
BEGIN
    SELECT * INTO pol FROM verify_policy;
    p_uniqueid := left(p_uniqueid, 150); p_channel := left(coalesce(p_channel, ''), 80);
    p_ani := left(p_ani, 40); p_agency := left(p_agency, 10); p_officer := left(p_officer, 12);
    IF EXISTS (SELECT 1 FROM ani_throttle WHERE ani = p_ani AND blocked_until > now()) THEN
        v_status := 'throttled';
    END IF;

    SELECT f.officer_id, f.agency_id, f.pin_hash, f.failed_count, f.locked_until
      INTO o
      FROM officer f JOIN agency a USING (agency_id)
     WHERE a.code = p_agency AND f.number = p_officer
       AND f.suspended_at IS NULL AND a.suspended_at IS NULL AND f.pin_hash IS NOT NULL
       FOR UPDATE OF f;
    v_known := FOUND;
    IF v_known THEN
        IF o.locked_until <= now() THEN  -- a lock that ran out starts the count again
            UPDATE officer SET failed_count = 0, locked_until = NULL
             WHERE officer_id = o.officer_id;
            o.failed_count := 0; o.locked_until := NULL;
        END IF;
        v_count := o.failed_count; v_locked := o.locked_until;
        v_line := EXISTS (SELECT 1 FROM agency_line WHERE e164 = p_ani
                                                      AND agency_id = o.agency_id);
    ELSE
        INSERT INTO verify_claim AS t (agency, officer) VALUES (p_agency, p_officer)
        ON CONFLICT (agency, officer) DO UPDATE SET updated_at = now()
        RETURNING * INTO c;  -- the upsert holds the row's lock to the end
        IF c.locked_until <= now() THEN
            UPDATE verify_claim SET failed_count = 0, locked_until = NULL
             WHERE agency = p_agency AND officer = p_officer;
            c.failed_count := 0; c.locked_until := NULL;
        END IF;
        v_count := c.failed_count; v_locked := c.locked_until;
    END IF;

    IF v_status IS NULL AND (v_locked > now() OR v_count >= pol.max_failures) THEN
        v_status := 'locked';
    END IF;
    v_status := coalesce(v_status, CASE WHEN v_known THEN 'ok' ELSE 'unknown' END);

    -- Counted as a failure now, before any hash can leave the database; a right
    -- PIN clears it at the finish of this same attempt.
    IF v_status IN ('ok', 'unknown') THEN
        IF v_known THEN
            UPDATE officer SET failed_count = failed_count + 1 WHERE officer_id = o.officer_id
            RETURNING failed_count INTO v_count;
        ELSE
            UPDATE verify_claim SET failed_count = failed_count + 1, updated_at = now()
             WHERE agency = p_agency AND officer = p_officer
            RETURNING failed_count INTO v_count;
        END IF;
    END IF;

    INSERT INTO verify_attempt (uniqueid, channel, ani, agency, officer, officer_id, status,
                                line_ok, failures, begun_xid)
    VALUES (p_uniqueid, p_channel, p_ani, p_agency, p_officer,
            CASE WHEN v_known THEN o.officer_id END, v_status, v_line, v_count,
            txid_current())
    RETURNING attempt_id INTO v_id;
    RETURN v_id;
END $$;

-- The PIN hash of a committed attempt that may see one ('ok'), once it is
-- committed: NULL otherwise (the service then does the same argon2 work on a
-- dummy, so the answer takes as long).
CREATE FUNCTION sb_agi_attempt_hash(p_attempt_id bigint, p_uniqueid text)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    a verify_attempt;
    v_hash text;
BEGIN
    SELECT * INTO a FROM verify_attempt WHERE attempt_id = p_attempt_id FOR UPDATE;
    IF NOT FOUND OR a.uniqueid IS DISTINCT FROM p_uniqueid OR a.status <> 'ok'
       OR a.finished_at IS NOT NULL OR a.begun_xid = txid_current()
       OR a.started_at < now() - make_interval(secs => (SELECT attempt_ttl_s
                                                         FROM verify_policy)) THEN
        RETURN NULL;
    END IF;
    SELECT pin_hash INTO v_hash FROM officer WHERE officer_id = a.officer_id;
    UPDATE verify_attempt SET hash_given_at = now() WHERE attempt_id = p_attempt_id;
    RETURN v_hash;
END $$;

-- The outcome: full | line-only | failed | locked.  Only for the attempt begun
-- by this call; the officer, agency and calling number of the audit row are
-- the attempt's, not the caller's.  p_new_hash: the same PIN hashed with the
-- current argon2 parameters (re-hash on a right PIN), or NULL.
CREATE FUNCTION sb_agi_attempt_finish(p_attempt_id bigint, p_uniqueid text, p_pin_ok boolean,
                                      p_new_hash text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    pol       verify_policy;
    a         verify_attempt;
    v_outcome text;
    v_ani     ani_throttle;
BEGIN
    SELECT * INTO pol FROM verify_policy;
    SELECT * INTO a FROM verify_attempt WHERE attempt_id = p_attempt_id FOR UPDATE;
    IF NOT FOUND OR a.uniqueid IS DISTINCT FROM p_uniqueid OR a.finished_at IS NOT NULL
       OR a.started_at < now() - make_interval(secs => pol.attempt_ttl_s) THEN
        PERFORM sb_audit_append('agi', left(p_uniqueid, 150), NULL, NULL, NULL, 'verify',
                                'refused', 'finish without a begun attempt');
        RETURN 'failed';
    END IF;

    IF a.status = 'ok' AND p_pin_ok AND a.hash_given_at IS NOT NULL
       AND EXISTS (SELECT 1 FROM officer WHERE officer_id = a.officer_id
                      AND (locked_until IS NULL OR locked_until <= now()))
       AND NOT EXISTS (SELECT 1 FROM ani_throttle WHERE ani = a.ani
                          AND blocked_until > now()) THEN
        -- consecutive failures end here; attempts still in flight on this officer
        -- (each saw a hash) stay counted until they finish themselves
        UPDATE officer
           SET failed_count = (SELECT count(*) FROM verify_attempt v
                                WHERE v.officer_id = a.officer_id AND v.status = 'ok'
                                  AND v.finished_at IS NULL AND v.attempt_id <> a.attempt_id
                                  AND v.started_at > now() - make_interval(
                                      secs => pol.attempt_ttl_s)),
               locked_until = NULL,
               pin_hash = CASE WHEN p_new_hash LIKE '$argon2id$%' AND length(p_new_hash) < 300
                               THEN p_new_hash ELSE pin_hash END,
               pin_set_at = CASE WHEN p_new_hash LIKE '$argon2id$%' AND length(p_new_hash) < 300
                                 THEN now() ELSE pin_set_at END
         WHERE officer_id = a.officer_id;
        v_outcome := CASE WHEN a.line_ok THEN 'full' ELSE 'line-only' END;
        UPDATE verify_attempt SET finished_at = now(), outcome = v_outcome
         WHERE attempt_id = a.attempt_id;
        PERFORM sb_audit_append('agi', a.uniqueid, a.ani, a.agency, a.officer, 'verify',
                                v_outcome);
        RETURN v_outcome;
    END IF;

    -- A failure (already counted at begin): wrong PIN, unknown id, locked, throttled.
    v_outcome := CASE WHEN a.status IN ('locked', 'throttled') THEN 'locked' ELSE 'failed' END;
    PERFORM sb_audit_append('agi', a.uniqueid, a.ani, a.agency, a.officer, 'verify',
                            CASE a.status WHEN 'ok' THEN 'wrong-pin' ELSE a.status END);
    -- the attempt that was the limit's own (its count, taken at begin) locks; the
    -- ones begun after it were refused at begin
    IF a.status IN ('ok', 'unknown') THEN
        IF a.failures >= pol.max_failures THEN
            IF a.officer_id IS NOT NULL THEN
                UPDATE officer SET locked_until = now() + make_interval(mins => pol.lock_minutes)
                 WHERE officer_id = a.officer_id AND (locked_until IS NULL
                                                      OR locked_until <= now());
            ELSE
                UPDATE verify_claim
                   SET locked_until = now() + make_interval(mins => pol.lock_minutes)
                 WHERE agency = a.agency AND officer = a.officer
                   AND (locked_until IS NULL OR locked_until <= now());
            END IF;
            IF FOUND THEN  -- an alert for ops: the audit row, and the service logs it
                PERFORM sb_audit_append('agi', a.uniqueid, a.ani, a.agency, a.officer,
                                        'lockout', format('%s failures', a.failures));
            END IF;
            v_outcome := 'locked';
        END IF;
    END IF;

    IF a.status <> 'throttled' THEN
        INSERT INTO ani_throttle AS t VALUES (a.ani, now(), 1, NULL)
        ON CONFLICT (ani) DO UPDATE
           SET window_start = CASE WHEN t.window_start < now() - interval '1 hour'
                                   THEN now() ELSE t.window_start END,
               failures = CASE WHEN t.window_start < now() - interval '1 hour'
                               THEN 1 ELSE t.failures + 1 END
        RETURNING * INTO v_ani;
        IF v_ani.failures >= pol.ani_max_failures
           AND (v_ani.blocked_until IS NULL OR v_ani.blocked_until <= now()) THEN
            UPDATE ani_throttle
               SET blocked_until = now() + make_interval(mins => pol.ani_block_minutes),
                   failures = 0, window_start = now()
             WHERE ani = a.ani;
            PERFORM sb_audit_append('agi', a.uniqueid, a.ani, NULL, NULL, 'throttle',
                                    format('%s failures in an hour', v_ani.failures));
        END IF;
    END IF;
    UPDATE verify_attempt SET finished_at = now(), outcome = v_outcome
     WHERE attempt_id = a.attempt_id;
    RETURN v_outcome;
END $$;

-- A case lookup, bound to the verification of the same call: same uniqueid,
-- channel and calling number, verified (full or line-only) within the policy's
-- window, and at most lookup_max lookups per verification.
-- outcome: found | not-found | refused.  The case number itself is not stored.
CREATE FUNCTION sb_agi_case_lookup(p_uniqueid text, p_channel text, p_ani text,
                                   p_case_number text,
                                   OUT outcome text, OUT case_ref text, OUT priority text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    pol verify_policy;
    a   verify_attempt;
    v_why text;
BEGIN
    SELECT * INTO pol FROM verify_policy;
    SELECT * INTO a FROM verify_attempt v
     WHERE v.uniqueid = p_uniqueid AND v.outcome IN ('full', 'line-only')
     ORDER BY v.finished_at DESC LIMIT 1 FOR UPDATE;
    v_why := CASE
        WHEN NOT FOUND THEN 'not verified'
        WHEN a.channel IS DISTINCT FROM left(coalesce(p_channel, ''), 80)
             OR a.ani IS DISTINCT FROM p_ani THEN 'another channel'
        WHEN a.finished_at < now() - make_interval(mins => pol.lookup_window_minutes)
             THEN 'verification too old'
        WHEN a.lookups >= pol.lookup_max THEN 'too many lookups'
    END;
    IF v_why IS NOT NULL THEN
        outcome := 'refused';
        PERFORM sb_audit_append('agi', left(p_uniqueid, 150), left(p_ani, 40), NULL, NULL,
                                'lookup', outcome, v_why);
        RETURN;
    END IF;
    UPDATE verify_attempt v SET lookups = v.lookups + 1 WHERE v.attempt_id = a.attempt_id;
    SELECT c.ref, c.priority INTO case_ref, priority
      FROM case_record c WHERE c.case_number = p_case_number;
    outcome := CASE WHEN FOUND THEN 'found' ELSE 'not-found' END;
    PERFORM sb_audit_append('agi', a.uniqueid, a.ani, a.agency, a.officer, 'lookup',
                            outcome, case_ref);
END $$;

-- The other rows the service writes: a caller who hung up, an error, and an
-- attempt shed under overload (no database connection was free for it).
CREATE OR REPLACE FUNCTION sb_agi_audit(p_uniqueid text, p_ani text, p_action text,
                                        p_result text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF p_action NOT IN ('verify', 'lookup')
       OR p_result NOT IN ('hangup', 'not-verified', 'error', 'shed') THEN
        RAISE EXCEPTION 'sb_agi_audit: % % not allowed', p_action, p_result;
    END IF;
    RETURN sb_audit_append('agi', p_uniqueid, p_ani, NULL, NULL, p_action, p_result);
END $$;

-- The old entry points trusted their caller (a finish without a begin, policy
-- from the arguments, a lookup by uniqueid alone): gone.
DROP FUNCTION sb_agi_verify_finish(text, text, text, text, text, integer, boolean, boolean,
                                   integer, integer, integer, integer);
DROP FUNCTION sb_agi_verify_begin(text, text, text);
DROP TYPE sb_verify_start;
DROP FUNCTION sb_agi_lookup(text, text, text);

REVOKE ALL ON verify_policy, verify_claim, verify_attempt FROM PUBLIC;
REVOKE ALL ON FUNCTION sb_agi_attempt_begin(text, text, text, text, text),
    sb_agi_attempt_hash(bigint, text), sb_agi_attempt_finish(bigint, text, boolean, text),
    sb_agi_case_lookup(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_agi_attempt_begin(text, text, text, text, text),
    sb_agi_attempt_hash(bigint, text), sb_agi_attempt_finish(bigint, text, boolean, text),
    sb_agi_case_lookup(text, text, text, text) TO sb_agi;

-- For ops' alerts (the wall board's Prometheus gauges): how many locks, blocks,
-- shed attempts and refused finishes or lookups since a time, and nothing else
-- of the audit log (sb_reports cannot read it).
CREATE FUNCTION sb_security_counts(p_since timestamptz)
RETURNS TABLE (kind text, n bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT k, count(a.*) FROM unnest(ARRAY['lockout', 'throttle', 'shed', 'refused']) k
      LEFT JOIN audit_log a ON a.at >= p_since AND (a.action = k OR a.result = k)
     GROUP BY k ORDER BY k
$$;
REVOKE ALL ON FUNCTION sb_security_counts(timestamptz) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_reports') THEN
        EXECUTE 'GRANT EXECUTE ON FUNCTION sb_security_counts(timestamptz) TO sb_reports';
    END IF;
END $$;

-- Reports count callbacks; they need no caller number or case reference.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_reports') THEN
        EXECUTE 'REVOKE SELECT ON callback_request FROM sb_reports';
        EXECUTE 'GRANT SELECT (uniqueid, requested_at) ON callback_request TO sb_reports';
    END IF;
END $$;
