-- Failed authentications since p_since, by address (the one place that says
-- which security events are failures; the index above holds the same list).
CREATE OR REPLACE FUNCTION sb_edge_failures(p_since timestamptz)
RETURNS TABLE (address text, failures bigint, last_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT split_part(e.fields->>'RemoteAddress', '/', 3), count(*), max(e.event_time)
      FROM ami_event e
     WHERE e.event_time >= p_since
       AND e.event IN ('InvalidAccountID', 'ChallengeResponseFailed', 'InvalidPassword',
                       'FailedACL', 'UnexpectedAddress', 'RequestBadFormat',
                       'RequestNotAllowed', 'AuthMethodNotAllowed', 'InvalidTransport')
     GROUP BY 1
$$;

REVOKE ALL ON FUNCTION sb_edge_failures(p_since timestamp with time zone) FROM PUBLIC;
