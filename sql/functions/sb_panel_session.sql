-- An open panel page checks its session on every refresh (up to five a second
-- in a burst of calls): it rewrote the session row each time.  The idle clock
-- now moves at most every 5 s (idle limits are 10 s and more), so a check is a
-- read, and a write only when the clock moves.
CREATE OR REPLACE FUNCTION sb_panel_session(p_token_hash bytea)
RETURNS TABLE (agent_id integer, login text, name text, interface text, role text,
               expires_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE panel_session s SET last_seen_at = now()
     WHERE s.token_hash = p_token_hash AND s.ended_at IS NULL AND s.expires_at > now()
       AND s.last_seen_at > now() - make_interval(secs => s.idle_s)
       AND s.last_seen_at < now() - interval '5 seconds';
    RETURN QUERY
    SELECT a.agent_id, a.login, a.name, a.interface, a.role, s.expires_at
      FROM panel_session s JOIN agent a ON a.agent_id = s.agent_id
     WHERE s.token_hash = p_token_hash AND s.ended_at IS NULL AND s.expires_at > now()
       AND s.last_seen_at > now() - make_interval(secs => s.idle_s)
       AND a.disabled_at IS NULL;
END $$;

REVOKE ALL ON FUNCTION sb_panel_session(p_token_hash bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_session(p_token_hash bytea) TO sb_panel;
