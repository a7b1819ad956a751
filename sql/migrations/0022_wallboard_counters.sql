-- The wall board's other figures at 100x the reference volume (issue 15): at
-- 650,000 calls a day, counting today's audit rows took seconds.
--
-- * Security counts (locks, blocks, shed attempts, refusals): the same
--   question, asked through a partial index that holds only such rows.
-- * Caller-ID split: a counter per 15-minute bin and kind, bumped by
--   sb_agi_caller_id when it records a call's check (a call is checked once).
-- * Verification split: each call's best verification so far (verify_best),
--   and a counter per bin (of the call's first verification) and level, moved
--   when a call's best level rises (a trigger on the audit log, which is
--   append-only: counts only ever move up a level).  A call is counted on the
--   day of its first verification; before, a call verified across midnight
--   counted on both days.
-- A 'since' that does not fall on a quarter hour is answered from the rows.

CREATE INDEX audit_log_security_idx ON audit_log (at)
    WHERE action IN ('lockout', 'throttle', 'shed', 'refused')
       OR result IN ('lockout', 'throttle', 'shed', 'refused');

-- --- caller-ID split -------------------------------------------------------------------
CREATE TABLE caller_id_bin (
    bin   timestamptz NOT NULL,
    kind  text NOT NULL CHECK (kind IN ('attested-a', 'attested-bc', 'not-attested', 'failed')),
    calls bigint NOT NULL,
    PRIMARY KEY (bin, kind)
);

INSERT INTO caller_id_bin
SELECT sb_kpi_binof(checked_at), sb_caller_id_kind(attest, result), count(*)
  FROM caller_id_check GROUP BY 1, 2;

-- --- verification split ----------------------------------------------------------------
CREATE TABLE verify_best (
    uniqueid text PRIMARY KEY,
    bin      timestamptz NOT NULL,  -- of the call's first verification row
    rank     smallint NOT NULL      -- 4 full, 3 callback, 2 line-only, 1 unverified
);
CREATE INDEX verify_best_bin_idx ON verify_best (bin);

CREATE TABLE verify_bin (
    bin   timestamptz NOT NULL,
    rank  smallint NOT NULL,
    calls bigint NOT NULL,
    PRIMARY KEY (bin, rank)
);

INSERT INTO verify_best
SELECT uniqueid, sb_kpi_binof(min(at)), max(sb_verify_rank(result))
  FROM audit_log
 WHERE action = 'verify' AND uniqueid IS NOT NULL
   AND result NOT IN ('refused', 'error', 'shed')
 GROUP BY uniqueid;
INSERT INTO verify_bin SELECT bin, rank, count(*) FROM verify_best GROUP BY 1, 2;

REVOKE ALL ON caller_id_bin, verify_best, verify_bin FROM PUBLIC;
