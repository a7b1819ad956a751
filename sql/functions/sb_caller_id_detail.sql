-- What the audit rows of a call's verification say about its caller ID.
CREATE OR REPLACE FUNCTION sb_caller_id_detail(p_uniqueid text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT coalesce((SELECT format('caller-id %s attest=%s source=%s%s', c.result,
                                   coalesce(c.attest, '-'), c.source,
                                   coalesce(' reason=' || c.reason, ''))
                       FROM caller_id_check c WHERE c.uniqueid = p_uniqueid),
                    'caller-id unknown')
$$;

REVOKE ALL ON FUNCTION sb_caller_id_detail(p_uniqueid text) FROM PUBLIC;
