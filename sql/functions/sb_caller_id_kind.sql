CREATE OR REPLACE FUNCTION sb_caller_id_kind(p_attest text, p_result text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_result = 'passed' AND p_attest = 'A' THEN 'attested-a'
                WHEN p_result = 'passed' THEN 'attested-bc'
                WHEN p_result = 'failed' THEN 'failed'
                ELSE 'not-attested' END
$$;
