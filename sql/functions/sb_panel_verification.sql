-- The verification of a call: its last finished attempt, and a callback mark.
CREATE OR REPLACE FUNCTION sb_panel_verification(p_uniqueid text,
    OUT level text, OUT why text, OUT agency_id integer, OUT agency_code text,
    OUT agency_name text, OUT officer_number text, OUT officer_name text, OUT ani text,
    OUT registered_line boolean, OUT caller_id text, OUT caller_id_failed boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    a verify_attempt;
BEGIN
    caller_id := sb_caller_id_words(p_uniqueid);
    caller_id_failed := EXISTS (SELECT 1 FROM caller_id_check c
                                 WHERE c.uniqueid = p_uniqueid AND c.result = 'failed');
    SELECT * INTO a FROM verify_attempt v WHERE v.uniqueid = p_uniqueid
     ORDER BY (v.outcome IN ('full', 'line-only')) DESC NULLS LAST, v.started_at DESC
     LIMIT 1;
    IF FOUND THEN
        agency_code := a.agency; officer_number := a.officer; ani := a.ani;
        registered_line := a.line_ok;
        SELECT g.agency_id, g.name INTO agency_id, agency_name
          FROM agency g WHERE g.code = a.agency;
        SELECT o.name INTO officer_name FROM officer o WHERE o.officer_id = a.officer_id;
        IF a.outcome IN ('full', 'line-only') THEN
            level := a.outcome;
            IF a.outcome = 'line-only' THEN
                why := CASE
                    WHEN NOT a.line_ok THEN 'not the agency''s registered line'
                    WHEN caller_id_failed THEN 'registered line, but its caller ID FAILED validation'
                    ELSE 'registered line, but its caller ID is not attested (A)' END;
            END IF;
        ELSE
            level := 'unverified';
            why := CASE
                WHEN a.finished_at IS NULL THEN 'verification not finished'
                WHEN a.status = 'throttled' THEN 'calling number blocked after failures'
                WHEN a.status = 'locked' OR a.outcome = 'locked' THEN 'officer locked'
                WHEN a.status = 'unknown' THEN 'unknown agency or officer id'
                ELSE 'wrong PIN' END;
        END IF;
    ELSE
        level := 'unverified';
        why := 'no verification on this call';
    END IF;
    IF EXISTS (SELECT 1 FROM oob_call c WHERE c.uniqueid = p_uniqueid
                  AND c.purpose = 'verify' AND c.confirmed) THEN
        level := 'callback';
        why := NULL;
        SELECT c.agency_id, g.code, g.name INTO agency_id, agency_code, agency_name
          FROM oob_call c JOIN agency g USING (agency_id)
         WHERE c.uniqueid = p_uniqueid AND c.purpose = 'verify' AND c.confirmed
         ORDER BY c.confirmed_at DESC LIMIT 1;
    END IF;
END $$;

REVOKE ALL ON FUNCTION sb_panel_verification(p_uniqueid text, OUT level text, OUT why text, OUT agency_id integer, OUT agency_code text, OUT agency_name text, OUT officer_number text, OUT officer_name text, OUT ani text, OUT registered_line boolean, OUT caller_id text, OUT caller_id_failed boolean) FROM PUBLIC;
