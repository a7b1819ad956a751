-- Housekeeping the AGI service runs with its checkpoints (switchboard/auditlog.py):
-- claims of officer ids that do not exist are forgotten a day after their last
-- attempt when no lock holds (a spray of invented ids cannot grow the table
-- without end), attempts after 30 days (the audit log keeps what happened).
CREATE FUNCTION sb_agi_housekeeping() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    n integer;
    m integer;
BEGIN
    DELETE FROM verify_claim
     WHERE updated_at < now() - interval '1 day'
       AND (locked_until IS NULL OR locked_until < now());
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM verify_attempt WHERE started_at < now() - interval '30 days';
    GET DIAGNOSTICS m = ROW_COUNT;
    RETURN n + m;
END $$;
REVOKE ALL ON FUNCTION sb_agi_housekeeping() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_agi_housekeeping() TO sb_agi;
