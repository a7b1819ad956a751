-- A case lookup, bound to the verification of the same call: same uniqueid,
-- channel and calling number, verified (full or line-only) within the policy's
-- window, and at most lookup_max lookups per verification.
-- outcome: found | not-found | refused.  The case number itself is not stored.
CREATE OR REPLACE FUNCTION sb_agi_case_lookup(p_uniqueid text, p_channel text, p_ani text,
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

REVOKE ALL ON FUNCTION sb_agi_case_lookup(p_uniqueid text, p_channel text, p_ani text, p_case_number text, OUT outcome text, OUT case_ref text, OUT priority text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_agi_case_lookup(p_uniqueid text, p_channel text, p_ani text, p_case_number text, OUT outcome text, OUT case_ref text, OUT priority text) TO sb_agi;
