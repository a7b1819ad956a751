-- Verified callers: agencies, their registered lines, officers, cases, lockout and
-- throttling state, and the hash-chained audit log.  The AGI service works as the
-- role sb_agi, which may only EXECUTE the sb_agi_* functions below (SECURITY
-- DEFINER): it cannot read or change any table directly, so it can neither
-- update nor delete audit rows nor SELECT PIN hashes.
--
-- sb_agi is a cluster-wide role.  `switchboard db up` creates it (and grants it to
-- the application owner so the services can SET ROLE to it); on a database you
-- manage yourself, create it first:
--     CREATE ROLE sb_agi NOLOGIN; GRANT sb_agi TO <owner of this database>;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_agi') THEN
        BEGIN
            CREATE ROLE sb_agi NOLOGIN;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'role sb_agi does not exist and % may not create it: run '
                'CREATE ROLE sb_agi NOLOGIN; GRANT sb_agi TO %; as a superuser', current_user,
                current_user;
        END;
    END IF;
END $$;

CREATE TABLE agency (
    agency_id    serial PRIMARY KEY,
    code         text NOT NULL UNIQUE CHECK (code ~ '^[0-9]{2,6}$'),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    suspended_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- A number an agency has registered as its own.  E.164 only ('+' and 7-15 digits).
CREATE TABLE agency_line (
    e164       text PRIMARY KEY CHECK (e164 ~ '^\+[1-9][0-9]{6,14}$'),
    agency_id  integer NOT NULL REFERENCES agency,
    label      text CHECK (length(label) <= 200),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agency_line_agency_idx ON agency_line (agency_id);

-- pin_hash: argon2id, encoded ($argon2id$v=19$m=...,t=...,p=...$salt$hash), of
-- HMAC-SHA256(pepper, PIN); the pepper never enters the database.  NULL: no PIN
-- set yet (the officer cannot be verified).
CREATE TABLE officer (
    officer_id   serial PRIMARY KEY,
    agency_id    integer NOT NULL REFERENCES agency,
    number       text NOT NULL CHECK (number ~ '^[0-9]{3,10}$'),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    pin_hash     text CHECK (pin_hash LIKE '$argon2id$%'),
    pin_set_at   timestamptz,
    failed_count integer NOT NULL DEFAULT 0,
    locked_until timestamptz,
    suspended_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (agency_id, number)
);

-- Failed verifications per calling number in a one-hour window; a number over the
-- limit is blocked until blocked_until.  'withheld' stands for every caller with
-- no usable caller ID.
CREATE TABLE ani_throttle (
    ani           text PRIMARY KEY,
    window_start  timestamptz NOT NULL,
    failures      integer NOT NULL,
    blocked_until timestamptz
);

-- case_number: digits, the last one a Luhn (ISO/IEC 7812-1) check digit.
-- ref: the opaque reference handed to the dialplan and the agent's screen.
CREATE TABLE case_record (
    case_id     bigserial PRIMARY KEY,
    case_number text NOT NULL UNIQUE CHECK (case_number ~ '^[0-9]{6,12}$'),
    ref         text NOT NULL UNIQUE
                DEFAULT ('C' || upper(substr(replace(gen_random_uuid()::text, '-', ''), 1, 12))),
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    priority    text NOT NULL DEFAULT 'normal' CHECK (priority IN ('high', 'normal', 'low')),
    office      text NOT NULL CHECK (length(office) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The audit log: append-only, hash-chained.  There are 16 chains, so that calls
-- do not all queue on one head row (its lock is held until commit, fsync
-- included); every row of one call goes to the same chain (chosen by its
-- uniqueid; rows without a call, the ops commands', to chain 0).  In each chain,
-- row n carries hash(n-1) as prev_hash and hash = sha256(prev_hash || canonical
-- text of row n) (sb_audit_digest).  audit_head holds each chain's last seq and
-- hash, so seq has no gaps and a removed tail is noticed too.
-- `switchboard audit verify` walks every chain.
-- detail never holds a PIN or a case number (a lookup stores the case's ref).
CREATE TABLE audit_log (
    chain     smallint NOT NULL,
    seq       bigint NOT NULL,
    at        timestamptz NOT NULL,
    actor     text NOT NULL,
    uniqueid  text,
    ani       text,
    agency    text,
    officer   text,
    action    text NOT NULL,
    result    text NOT NULL,
    detail    text,
    prev_hash bytea NOT NULL,
    hash      bytea NOT NULL,
    PRIMARY KEY (chain, seq)
);
CREATE INDEX audit_log_uniqueid_idx ON audit_log (uniqueid) WHERE uniqueid IS NOT NULL;
-- sb_agi_lookup's question "was this call verified?" in one index probe
CREATE INDEX audit_log_verified_idx ON audit_log (uniqueid, at)
    WHERE action = 'verify' AND result IN ('full', 'line-only');
CREATE INDEX audit_log_officer_idx ON audit_log (agency, officer, at)
    WHERE officer IS NOT NULL;
CREATE INDEX audit_log_at_idx ON audit_log (at);

CREATE TABLE audit_head (
    chain smallint PRIMARY KEY CHECK (chain BETWEEN 0 AND 15),
    seq   bigint NOT NULL,
    hash  bytea NOT NULL
);

CREATE FUNCTION sb_audit_genesis(chain smallint) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sha256(convert_to('switchboard audit genesis ' || chain, 'UTF8'))
$$;
INSERT INTO audit_head SELECT c, 0, sb_audit_genesis(c::smallint) FROM generate_series(0, 15) c;

CREATE FUNCTION sb_audit_digest(prev bytea, chain smallint, seq bigint, at timestamptz,
                                actor text, uniqueid text, ani text, agency text,
                                officer text, action text, result text, detail text)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- %L writes NULL for a null and a quoted literal otherwise: unambiguous.
    SELECT sha256(prev || convert_to(format('%s|%s|%s|%L|%L|%L|%L|%L|%L|%L|%L',
        chain, seq, extract(epoch FROM at)::numeric(20, 6), actor, uniqueid, ani, agency,
        officer, action, result, detail), 'UTF8'))
$$;

CREATE FUNCTION sb_audit_forbid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION sb_audit_forbid();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION sb_audit_forbid();

-- Append one row to its chain (serialised on that chain's audit_head row, locked
-- to the end of the calling transaction, which is short).  Texts are bounded here.
CREATE FUNCTION sb_audit_append(p_actor text, p_uniqueid text, p_ani text, p_agency text,
                                p_officer text, p_action text, p_result text,
                                p_detail text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    h      audit_head;
    v_at   timestamptz := clock_timestamp();
    v_hash bytea;
BEGIN
    p_actor := left(p_actor, 100);  p_uniqueid := left(p_uniqueid, 150);
    p_ani := left(p_ani, 40);       p_agency := left(p_agency, 10);
    p_officer := left(p_officer, 12); p_action := left(p_action, 40);
    p_result := left(p_result, 40); p_detail := left(p_detail, 200);
    UPDATE audit_head SET seq = seq + 1
     WHERE chain = coalesce(hashtext(p_uniqueid) & 15, 0)
    RETURNING * INTO h;
    v_hash := sb_audit_digest(h.hash, h.chain, h.seq, v_at, p_actor, p_uniqueid, p_ani,
                              p_agency, p_officer, p_action, p_result, p_detail);
    INSERT INTO audit_log VALUES (h.chain, h.seq, v_at, p_actor, p_uniqueid, p_ani, p_agency,
                                  p_officer, p_action, p_result, p_detail, h.hash, v_hash);
    UPDATE audit_head SET hash = v_hash WHERE chain = h.chain;
    RETURN h.seq;
END $$;

-- Step 1 of a verification, in the same transaction as step 2: checks the calling
-- number's throttle, finds the officer (row locked: concurrent attempts on one
-- officer queue up, so the failure counter cannot be raced), and hands back the
-- PIN hash only when the officer may be verified at all.
--   status  ok         pin_hash given; check the PIN, then call sb_agi_verify_finish
--           locked     officer locked: no hash (nothing learnt about the PIN)
--           throttled  calling number blocked: no hash
--           unknown    no such agency/officer, suspended, or no PIN set
-- line_ok: the calling number is a registered line of the officer's agency.
CREATE TYPE sb_verify_start AS (status text, officer_id integer, pin_hash text,
                                line_ok boolean);

CREATE FUNCTION sb_agi_verify_begin(p_ani text, p_agency text, p_officer text)
RETURNS sb_verify_start LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_blocked timestamptz;
    o         record;
    v_line    boolean;
BEGIN
    SELECT blocked_until INTO v_blocked FROM ani_throttle WHERE ani = p_ani;
    IF v_blocked > now() THEN
        RETURN ROW('throttled', NULL, NULL, false)::sb_verify_start;
    END IF;
    SELECT f.officer_id, f.agency_id, f.pin_hash, f.locked_until, f.suspended_at,
           a.suspended_at AS agency_suspended
      INTO o
      FROM officer f JOIN agency a USING (agency_id)
     WHERE a.code = p_agency AND f.number = p_officer
       FOR UPDATE OF f;
    IF NOT FOUND OR o.suspended_at IS NOT NULL OR o.agency_suspended IS NOT NULL
       OR o.pin_hash IS NULL THEN
        RETURN ROW('unknown', NULL, NULL, false)::sb_verify_start;
    END IF;
    v_line := EXISTS (SELECT 1 FROM agency_line WHERE e164 = p_ani
                                                  AND agency_id = o.agency_id);
    IF o.locked_until > now() THEN
        RETURN ROW('locked', o.officer_id, NULL, v_line)::sb_verify_start;
    END IF;
    RETURN ROW('ok', o.officer_id, o.pin_hash, v_line)::sb_verify_start;
END $$;

-- Step 2: record the attempt and return the outcome for the dialplan:
-- full | line-only | failed | locked.  Counters and audit rows are written here.
-- Limits are the service's settings, clamped to sane ranges.
CREATE FUNCTION sb_agi_verify_finish(
    p_uniqueid text, p_ani text, p_agency text, p_officer text,
    p_status text, p_officer_id integer, p_pin_ok boolean, p_line_ok boolean,
    p_max_failures integer, p_lock_minutes integer,
    p_ani_max_failures integer, p_ani_block_minutes integer)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_outcome  text;
    v_failures integer;
    v_ani      ani_throttle;
BEGIN
    p_max_failures := least(greatest(p_max_failures, 1), 100);
    p_lock_minutes := least(greatest(p_lock_minutes, 1), 7 * 24 * 60);
    p_ani_max_failures := least(greatest(p_ani_max_failures, 1), 10000);
    p_ani_block_minutes := least(greatest(p_ani_block_minutes, 1), 7 * 24 * 60);

    -- The database stays the authority on locks and blocks, whatever the caller
    -- of this function says (the officer's row is locked since step 1).
    IF EXISTS (SELECT 1 FROM ani_throttle WHERE ani = p_ani AND blocked_until > now()) THEN
        p_status := 'throttled';
    ELSIF p_status = 'ok' AND NOT EXISTS (
            SELECT 1 FROM officer WHERE officer_id = p_officer_id
               AND (locked_until IS NULL OR locked_until <= now())) THEN
        p_status := 'locked';
    END IF;

    IF p_status = 'throttled' THEN
        PERFORM sb_audit_append('agi', p_uniqueid, p_ani, p_agency, p_officer,
                                'verify', 'throttled');
        RETURN 'locked';
    END IF;

    IF p_status = 'ok' AND p_pin_ok THEN
        UPDATE officer SET failed_count = 0, locked_until = NULL
         WHERE officer_id = p_officer_id;
        v_outcome := CASE WHEN p_line_ok THEN 'full' ELSE 'line-only' END;
        PERFORM sb_audit_append('agi', p_uniqueid, p_ani, p_agency, p_officer,
                                'verify', v_outcome);
        RETURN v_outcome;
    END IF;

    -- A failure: wrong PIN, unknown officer, or an attempt on a locked officer.
    v_outcome := CASE WHEN p_status = 'locked' THEN 'locked' ELSE 'failed' END;
    PERFORM sb_audit_append('agi', p_uniqueid, p_ani, p_agency, p_officer, 'verify',
                            CASE WHEN p_status = 'ok' THEN 'wrong-pin'
                                 ELSE p_status END);
    IF p_status = 'ok' THEN
        UPDATE officer SET failed_count = failed_count + 1
         WHERE officer_id = p_officer_id RETURNING failed_count INTO v_failures;
        IF v_failures >= p_max_failures THEN
            UPDATE officer SET locked_until = now() + make_interval(mins => p_lock_minutes)
             WHERE officer_id = p_officer_id;
            PERFORM sb_audit_append('agi', p_uniqueid, p_ani, p_agency, p_officer,
                                    'lockout', format('%s failures', v_failures));
            v_outcome := 'locked';
        END IF;
    END IF;

    INSERT INTO ani_throttle AS t VALUES (p_ani, now(), 1, NULL)
    ON CONFLICT (ani) DO UPDATE
       SET window_start = CASE WHEN t.window_start < now() - interval '1 hour'
                               THEN now() ELSE t.window_start END,
           failures = CASE WHEN t.window_start < now() - interval '1 hour'
                           THEN 1 ELSE t.failures + 1 END
    RETURNING * INTO v_ani;
    IF v_ani.failures >= p_ani_max_failures
       AND (v_ani.blocked_until IS NULL OR v_ani.blocked_until <= now()) THEN
        UPDATE ani_throttle
           SET blocked_until = now() + make_interval(mins => p_ani_block_minutes),
               failures = 0, window_start = now()
         WHERE ani = p_ani;
        PERFORM sb_audit_append('agi', p_uniqueid, p_ani, NULL, NULL, 'throttle',
                                format('%s failures in an hour', v_ani.failures));
        v_outcome := 'locked';
    END IF;
    RETURN v_outcome;
END $$;

-- A case lookup.  Refused unless this call (uniqueid) was verified (full or
-- line-only) in the last 4 hours, whatever the channel variables say.
-- outcome: found | not-found | refused.  The case number itself is not stored.
CREATE FUNCTION sb_agi_lookup(p_uniqueid text, p_ani text, p_case_number text,
                              OUT outcome text, OUT case_ref text, OUT priority text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v record;
BEGIN
    SELECT agency, officer INTO v FROM audit_log
     WHERE uniqueid = p_uniqueid AND action = 'verify' AND result IN ('full', 'line-only')
       AND at > now() - interval '4 hours'
     ORDER BY at DESC LIMIT 1;
    IF NOT FOUND THEN
        outcome := 'refused';
        PERFORM sb_audit_append('agi', p_uniqueid, p_ani, NULL, NULL, 'lookup', outcome);
        RETURN;
    END IF;
    SELECT c.ref, c.priority INTO case_ref, priority
      FROM case_record c WHERE c.case_number = p_case_number;
    outcome := CASE WHEN FOUND THEN 'found' ELSE 'not-found' END;
    PERFORM sb_audit_append('agi', p_uniqueid, p_ani, v.agency, v.officer, 'lookup',
                            outcome, case_ref);
END $$;

-- The other audit rows the AGI service writes: a caller who hung up mid-way, a
-- lookup refused because the call was not verified, a handler error.  Limited to
-- these, so the service cannot write a row that looks like a verification.
CREATE FUNCTION sb_agi_audit(p_uniqueid text, p_ani text, p_action text, p_result text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF p_action NOT IN ('verify', 'lookup')
       OR p_result NOT IN ('hangup', 'not-verified', 'error') THEN
        RAISE EXCEPTION 'sb_agi_audit: % % not allowed', p_action, p_result;
    END IF;
    RETURN sb_audit_append('agi', p_uniqueid, p_ani, NULL, NULL, p_action, p_result);
END $$;

REVOKE ALL ON agency, agency_line, officer, ani_throttle, case_record, audit_log, audit_head
    FROM PUBLIC;
REVOKE ALL ON FUNCTION sb_audit_append(text, text, text, text, text, text, text, text),
    sb_agi_verify_begin(text, text, text),
    sb_agi_verify_finish(text, text, text, text, text, integer, boolean, boolean, integer,
                         integer, integer, integer),
    sb_agi_lookup(text, text, text), sb_agi_audit(text, text, text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_agi_verify_begin(text, text, text),
    sb_agi_verify_finish(text, text, text, text, text, integer, boolean, boolean, integer,
                         integer, integer, integer),
    sb_agi_lookup(text, text, text), sb_agi_audit(text, text, text, text)
    TO sb_agi;
