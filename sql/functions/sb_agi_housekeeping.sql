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

REVOKE ALL ON FUNCTION sb_agi_housekeeping() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_agi_housekeeping() TO sb_agi;
