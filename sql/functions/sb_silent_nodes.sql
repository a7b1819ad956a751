-- Nodes whose listener has not heard from Asterisk for p_silent_s seconds.
CREATE OR REPLACE FUNCTION sb_silent_nodes(p_silent_s integer)
RETURNS TABLE (node text, last_seen_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT node, last_seen_at FROM listener_checkpoint
     WHERE last_seen_at IS NULL OR last_seen_at <= now() - make_interval(secs => p_silent_s)
     ORDER BY node
$$;

REVOKE ALL ON FUNCTION sb_silent_nodes(p_silent_s integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_silent_nodes(p_silent_s integer) TO sb_reports;
