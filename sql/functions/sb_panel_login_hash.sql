-- The password hash of an enabled, unlocked agent (the server checks it with
-- the pepper it holds), or nothing: the server then does the same work on a dummy.
CREATE OR REPLACE FUNCTION sb_panel_login_hash(p_login text)
RETURNS TABLE (agent_id integer, password_hash text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT a.agent_id, a.password_hash FROM agent a
     WHERE a.login = left(p_login, 40) AND a.disabled_at IS NULL
       AND a.password_hash IS NOT NULL
       AND (a.locked_until IS NULL OR a.locked_until <= now())
$$;

REVOKE ALL ON FUNCTION sb_panel_login_hash(p_login text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_login_hash(p_login text) TO sb_panel;
