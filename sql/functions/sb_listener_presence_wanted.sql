CREATE OR REPLACE FUNCTION sb_listener_presence_wanted()
RETURNS SETOF agent_presence
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT * FROM agent_presence ORDER BY interface, queue
$$;

REVOKE ALL ON FUNCTION sb_listener_presence_wanted() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_listener_presence_wanted() TO sb_listener;
