-- Does the registered-line factor count for this call's caller ID?
CREATE OR REPLACE FUNCTION sb_caller_id_counts(p_uniqueid text, p_ani text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT CASE
        WHEN c.uniqueid IS NULL OR c.ani IS DISTINCT FROM p_ani THEN p.unattested_line_counts
        WHEN c.result = 'failed' THEN false
        WHEN c.result = 'passed' AND c.attest = 'A' THEN true
        ELSE p.unattested_line_counts END
      FROM verify_policy p
      LEFT JOIN caller_id_check c ON c.uniqueid = p_uniqueid
$$;

REVOKE ALL ON FUNCTION sb_caller_id_counts(p_uniqueid text, p_ani text) FROM PUBLIC;
