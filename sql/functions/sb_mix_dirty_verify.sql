-- The mix's marks for verification attempts: a call's outcome is its last
-- finished attempt's, so a change to any finished attempt of a call marks the
-- bins of all of that call's finished attempts (the one that stops being the
-- last loses the call).  The AGI's many updates that finish nothing mark
-- nothing.  No delete trigger: the 30-day housekeeping keeps the bins (0028).
CREATE OR REPLACE FUNCTION sb_mix_dirty_verify() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    uids text[] := ARRAY(SELECT uniqueid FROM new_rows
                          WHERE outcome IS NOT NULL AND finished_at IS NOT NULL);
    olds timestamptz[] := '{}';
BEGIN
    IF TG_OP = 'UPDATE' THEN
        uids := uids || ARRAY(SELECT uniqueid FROM old_rows
                               WHERE outcome IS NOT NULL AND finished_at IS NOT NULL);
        olds := ARRAY(SELECT finished_at FROM old_rows
                       WHERE outcome IS NOT NULL AND finished_at IS NOT NULL);
    END IF;
    IF cardinality(uids) > 0 THEN
        PERFORM sb_mix_mark(olds || ARRAY(
            SELECT finished_at FROM verify_attempt
             WHERE uniqueid = ANY (uids) AND outcome IS NOT NULL AND finished_at IS NOT NULL),
            'verification');
    END IF;
    RETURN NULL;
END $$;

REVOKE ALL ON FUNCTION sb_mix_dirty_verify() FROM PUBLIC;

CREATE OR REPLACE TRIGGER verify_attempt_mix_ins AFTER INSERT ON verify_attempt
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_mix_dirty_verify();
CREATE OR REPLACE TRIGGER verify_attempt_mix_upd AFTER UPDATE ON verify_attempt
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_mix_dirty_verify();
