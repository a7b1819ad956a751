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

CREATE OR REPLACE FUNCTION sb_security_counts(p_since timestamptz)
RETURNS TABLE (kind text, n bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH r AS (
        SELECT action, result FROM audit_log
         WHERE at >= p_since
           AND (action IN ('lockout', 'throttle', 'shed', 'refused')
                OR result IN ('lockout', 'throttle', 'shed', 'refused')))
    SELECT k, count(r.*) FROM unnest(ARRAY['lockout', 'throttle', 'shed', 'refused']) k
      LEFT JOIN r ON r.action = k OR r.result = k
     GROUP BY k ORDER BY k
$$;

-- --- caller-ID split -------------------------------------------------------------------
CREATE TABLE caller_id_bin (
    bin   timestamptz NOT NULL,
    kind  text NOT NULL CHECK (kind IN ('attested-a', 'attested-bc', 'not-attested', 'failed')),
    calls bigint NOT NULL,
    PRIMARY KEY (bin, kind)
);

CREATE FUNCTION sb_caller_id_kind(p_attest text, p_result text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_result = 'passed' AND p_attest = 'A' THEN 'attested-a'
                WHEN p_result = 'passed' THEN 'attested-bc'
                WHEN p_result = 'failed' THEN 'failed'
                ELSE 'not-attested' END
$$;

CREATE FUNCTION sb_caller_id_counted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO caller_id_bin AS b
    SELECT sb_kpi_binof(checked_at), sb_caller_id_kind(attest, result), count(*)
      FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (bin, kind) DO UPDATE SET calls = b.calls + EXCLUDED.calls;
    RETURN NULL;
END $$;
CREATE TRIGGER caller_id_check_counted AFTER INSERT ON caller_id_check
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION sb_caller_id_counted();

INSERT INTO caller_id_bin
SELECT sb_kpi_binof(checked_at), sb_caller_id_kind(attest, result), count(*)
  FROM caller_id_check GROUP BY 1, 2;

CREATE OR REPLACE FUNCTION sb_caller_id_split(p_since timestamptz)
RETURNS TABLE (kind text, calls bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH k AS (
        SELECT b.kind, b.calls FROM caller_id_bin b
         WHERE sb_kpi_binof(p_since) = p_since AND b.bin >= p_since
        UNION ALL
        SELECT sb_caller_id_kind(c.attest, c.result), 1 FROM caller_id_check c
         WHERE sb_kpi_binof(p_since) <> p_since AND c.checked_at >= p_since)
    SELECT l.kind, coalesce(sum(k.calls), 0)::bigint
      FROM (VALUES (1, 'attested-a'), (2, 'attested-bc'), (3, 'not-attested'), (4, 'failed'))
           AS l (n, kind)
      LEFT JOIN k USING (kind)
     GROUP BY l.n, l.kind ORDER BY l.n
$$;

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

CREATE FUNCTION sb_verify_rank(p_result text) RETURNS smallint
LANGUAGE sql IMMUTABLE AS $$
    SELECT (CASE p_result WHEN 'full' THEN 4 WHEN 'callback' THEN 3 WHEN 'line-only' THEN 2
                          ELSE 1 END)::smallint
$$;

CREATE FUNCTION sb_verify_counted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r    smallint := sb_verify_rank(NEW.result);
    best verify_best;
BEGIN
    INSERT INTO verify_best VALUES (NEW.uniqueid, sb_kpi_binof(NEW.at), r)
    ON CONFLICT (uniqueid) DO NOTHING;
    IF FOUND THEN
        INSERT INTO verify_bin AS v VALUES (sb_kpi_binof(NEW.at), r, 1)
        ON CONFLICT (bin, rank) DO UPDATE SET calls = v.calls + 1;
        RETURN NULL;
    END IF;
    SELECT * INTO best FROM verify_best WHERE uniqueid = NEW.uniqueid FOR UPDATE;
    IF r > best.rank THEN
        UPDATE verify_best SET rank = r WHERE uniqueid = NEW.uniqueid;
        UPDATE verify_bin SET calls = calls - 1 WHERE bin = best.bin AND rank = best.rank;
        INSERT INTO verify_bin AS v VALUES (best.bin, r, 1)
        ON CONFLICT (bin, rank) DO UPDATE SET calls = v.calls + 1;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER audit_log_verify_counted AFTER INSERT ON audit_log
    FOR EACH ROW WHEN (NEW.action = 'verify' AND NEW.uniqueid IS NOT NULL
                       AND NEW.result NOT IN ('refused', 'error', 'shed'))
    EXECUTE FUNCTION sb_verify_counted();

INSERT INTO verify_best
SELECT uniqueid, sb_kpi_binof(min(at)), max(sb_verify_rank(result))
  FROM audit_log
 WHERE action = 'verify' AND uniqueid IS NOT NULL
   AND result NOT IN ('refused', 'error', 'shed')
 GROUP BY uniqueid;
INSERT INTO verify_bin SELECT bin, rank, count(*) FROM verify_best GROUP BY 1, 2;

CREATE OR REPLACE FUNCTION sb_verify_split(p_since timestamptz)
RETURNS TABLE (level text, calls bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH best AS (
        SELECT b.rank, b.calls FROM verify_bin b
         WHERE sb_kpi_binof(p_since) = p_since AND b.bin >= p_since
        UNION ALL
        SELECT max(sb_verify_rank(result)), 1 FROM audit_log
         WHERE sb_kpi_binof(p_since) <> p_since
           AND at >= p_since AND action = 'verify' AND uniqueid IS NOT NULL
           AND result NOT IN ('refused', 'error', 'shed')
         GROUP BY uniqueid)
    SELECT l.level, coalesce(sum(b.calls), 0)::bigint
      FROM (VALUES (4, 'full'), (3, 'callback'), (2, 'line-only'), (1, 'unverified'))
           AS l (rank, level)
      LEFT JOIN best b USING (rank)
     GROUP BY l.rank, l.level ORDER BY l.rank DESC
$$;

-- Housekeeping (0010) also forgets caller-ID checks (0018) and each call's best
-- verification after 30 days, with the attempts (the counters and the audit log
-- keep what happened).
CREATE OR REPLACE FUNCTION sb_agi_housekeeping() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    n integer;
    m integer;
    k integer;
    v integer;
BEGIN
    DELETE FROM verify_claim
     WHERE updated_at < now() - interval '1 day'
       AND (locked_until IS NULL OR locked_until < now());
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM verify_attempt WHERE started_at < now() - interval '30 days';
    GET DIAGNOSTICS m = ROW_COUNT;
    DELETE FROM caller_id_check WHERE checked_at < now() - interval '30 days';
    GET DIAGNOSTICS k = ROW_COUNT;
    DELETE FROM verify_best WHERE bin < now() - interval '30 days';
    GET DIAGNOSTICS v = ROW_COUNT;
    RETURN n + m + k + v;
END $$;

REVOKE ALL ON caller_id_bin, verify_best, verify_bin FROM PUBLIC;
