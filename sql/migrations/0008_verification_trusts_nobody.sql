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
DROP TYPE sb_verify_start;

REVOKE ALL ON verify_policy, verify_claim, verify_attempt FROM PUBLIC;

-- Reports count callbacks; they need no caller number or case reference.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_reports') THEN
        EXECUTE 'REVOKE SELECT ON callback_request FROM sb_reports';
        EXECUTE 'GRANT SELECT (uniqueid, requested_at) ON callback_request TO sb_reports';
    END IF;
END $$;
