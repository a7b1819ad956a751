CREATE OR REPLACE FUNCTION sb_report_mix(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (part text, kind text, n bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT 'verification', v.outcome, count(*)
      FROM (SELECT DISTINCT ON (uniqueid) uniqueid, outcome FROM verify_attempt
             WHERE finished_at >= p_from AND finished_at < p_to AND outcome IS NOT NULL
             ORDER BY uniqueid, finished_at DESC) v
     GROUP BY v.outcome
    UNION ALL
    SELECT 'caller_id', CASE WHEN result = 'passed' AND attest = 'A' THEN 'attested-a'
                             WHEN result = 'passed' THEN 'attested-bc'
                             WHEN result = 'failed' THEN 'failed'
                             ELSE 'not-attested' END, count(*)
      FROM caller_id_check WHERE checked_at >= p_from AND checked_at < p_to
     GROUP BY 2
    UNION ALL
    SELECT 'callbacks', status, count(*) FROM callback_request
     WHERE requested_at >= p_from AND requested_at < p_to GROUP BY status
    UNION ALL
    SELECT 'dispositions', code, count(*) FROM call_disposition
     WHERE saved_at >= p_from AND saved_at < p_to GROUP BY code
    UNION ALL
    SELECT 'transfers', coalesce(split_part(transfer_target, '@', 1), 'unknown'), count(*)
      FROM queue_call
     WHERE outcome = 'transferred' AND entered_at >= p_from AND entered_at < p_to
     GROUP BY 2
    ORDER BY 1, 2
$$;

REVOKE ALL ON FUNCTION sb_report_mix(p_from timestamp with time zone, p_to timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_report_mix(p_from timestamp with time zone, p_to timestamp with time zone) TO sb_reports;
