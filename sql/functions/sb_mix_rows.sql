-- The reports' mix by its definitions, per 15-minute UTC bin, from the rows:
-- what report_mix_bin holds (sb_mix_refresh) and what an unaligned range is
-- answered from (sb_report_mix).  sql/kpi.md, "The mix".
--   verification  a call's outcome is its last finished attempt's, counted in
--                 the bin that attempt finished in (once per call, however many
--                 attempts, whichever range cuts between them)
--   caller_id     each call's check: attested-a, attested-bc, failed, not-attested
--   callbacks     requests by status, when requested
--   dispositions  by code, when saved
--   transfers     queue rows ended transferred, by target, when they entered
CREATE OR REPLACE FUNCTION sb_mix_rows(p_from timestamptz, p_to timestamptz, p_parts text[])
RETURNS TABLE (bin timestamptz, part text, kind text, n bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT sb_kpi_binof(v.finished_at), 'verification', v.outcome, count(*)
      FROM verify_attempt v
     WHERE 'verification' = ANY (p_parts)
       AND v.finished_at >= p_from AND v.finished_at < p_to AND v.outcome IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM verify_attempt w
                        WHERE w.uniqueid = v.uniqueid AND w.outcome IS NOT NULL
                          AND w.finished_at IS NOT NULL
                          AND (w.finished_at, w.attempt_id) > (v.finished_at, v.attempt_id))
     GROUP BY 1, 3
    UNION ALL
    SELECT sb_kpi_binof(checked_at), 'caller_id',
           CASE WHEN result = 'passed' AND attest = 'A' THEN 'attested-a'
                WHEN result = 'passed' THEN 'attested-bc'
                WHEN result = 'failed' THEN 'failed'
                ELSE 'not-attested' END, count(*)
      FROM caller_id_check
     WHERE 'caller_id' = ANY (p_parts) AND checked_at >= p_from AND checked_at < p_to
     GROUP BY 1, 3
    UNION ALL
    SELECT sb_kpi_binof(requested_at), 'callbacks', status, count(*) FROM callback_request
     WHERE 'callbacks' = ANY (p_parts) AND requested_at >= p_from AND requested_at < p_to
     GROUP BY 1, 3
    UNION ALL
    SELECT sb_kpi_binof(saved_at), 'dispositions', code, count(*) FROM call_disposition
     WHERE 'dispositions' = ANY (p_parts) AND saved_at >= p_from AND saved_at < p_to
     GROUP BY 1, 3
    UNION ALL
    SELECT sb_kpi_binof(entered_at), 'transfers',
           coalesce(split_part(transfer_target, '@', 1), 'unknown'), count(*)
      FROM queue_call
     WHERE 'transfers' = ANY (p_parts)
       AND outcome = 'transferred' AND entered_at >= p_from AND entered_at < p_to
     GROUP BY 1, 3
$$;

REVOKE ALL ON FUNCTION sb_mix_rows(p_from timestamp with time zone, p_to timestamp with time zone, p_parts text[]) FROM PUBLIC;
