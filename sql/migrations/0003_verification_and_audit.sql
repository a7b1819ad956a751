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
INSERT INTO audit_head SELECT c, 0, sb_audit_genesis(c::smallint) FROM generate_series(0, 15) c;

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

REVOKE ALL ON agency, agency_line, officer, ani_throttle, case_record, audit_log, audit_head
    FROM PUBLIC;
