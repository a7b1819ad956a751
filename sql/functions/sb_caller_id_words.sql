-- What the agent is told about a call's caller ID, in words.
CREATE OR REPLACE FUNCTION sb_caller_id_words(p_uniqueid text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT coalesce((SELECT CASE c.result
        WHEN 'passed' THEN format('validated, attestation %s', coalesce(c.attest, 'not given'))
        WHEN 'failed' THEN 'VALIDATION FAILED: the number may be spoofed'
        WHEN 'not-validated' THEN 'not validated by the carrier (unsigned)'
        WHEN 'absent' THEN 'no validation result from the carrier'
        WHEN 'not-provided' THEN 'not checked (the carrier provides no validation)'
        WHEN 'unproven' THEN 'NOT FROM THE CARRIER''S CONNECTION: any validation ignored'
        ELSE 'could not be checked' END
      FROM caller_id_check c WHERE c.uniqueid = p_uniqueid), 'not checked')
$$;

REVOKE ALL ON FUNCTION sb_caller_id_words(p_uniqueid text) FROM PUBLIC;
