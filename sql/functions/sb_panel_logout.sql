CREATE OR REPLACE FUNCTION sb_panel_logout(p_token_hash bytea) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE panel_session SET ended_at = now()
     WHERE token_hash = p_token_hash AND ended_at IS NULL
$$;

REVOKE ALL ON FUNCTION sb_panel_logout(p_token_hash bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_logout(p_token_hash bytea) TO sb_panel;
