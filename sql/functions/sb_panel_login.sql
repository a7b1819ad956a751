-- The result of a login: a session (token hash) on success; a failure counted,
-- and the account locked at the limit.  Every login is an audit row.
-- Returns: ok | failed | locked.
CREATE OR REPLACE FUNCTION sb_panel_login(p_login text, p_ok boolean, p_token_hash bytea,
                               p_lifetime_s integer, p_idle_s integer)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    pol panel_policy;
    a   agent;
BEGIN
    SELECT * INTO pol FROM panel_policy;
    p_login := left(p_login, 40);
    SELECT * INTO a FROM agent WHERE login = p_login FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM sb_audit_append('panel', NULL, NULL, NULL, NULL, 'panel-login', 'failed',
                                'unknown login');
        RETURN 'failed';
    END IF;
    IF a.disabled_at IS NOT NULL OR a.locked_until > now() THEN
        PERFORM sb_audit_append(sb_panel_actor(a), NULL, NULL, NULL, NULL, 'panel-login',
                                'refused', CASE WHEN a.disabled_at IS NOT NULL
                                                THEN 'disabled' ELSE 'locked' END);
        RETURN 'locked';
    END IF;
    IF p_ok AND a.password_hash IS NOT NULL THEN
        UPDATE agent SET failed_count = 0, locked_until = NULL WHERE agent_id = a.agent_id;
        INSERT INTO panel_session (token_hash, agent_id, expires_at, idle_s)
        VALUES (p_token_hash, a.agent_id,
                now() + make_interval(secs => least(greatest(p_lifetime_s, 10), 86400)),
                least(greatest(p_idle_s, 10), 86400));
        PERFORM sb_audit_append(sb_panel_actor(a), NULL, NULL, NULL, NULL, 'panel-login',
                                'ok');
        RETURN 'ok';
    END IF;
    UPDATE agent SET failed_count = failed_count + 1,
                     locked_until = CASE WHEN failed_count + 1 >= pol.login_max_failures
                                         THEN now() + make_interval(mins => pol.login_lock_minutes)
                                    END
     WHERE agent_id = a.agent_id RETURNING * INTO a;
    PERFORM sb_audit_append(sb_panel_actor(a), NULL, NULL, NULL, NULL, 'panel-login',
                            CASE WHEN a.locked_until IS NOT NULL THEN 'locked' ELSE 'failed' END,
                            format('%s failures', a.failed_count));
    RETURN CASE WHEN a.locked_until IS NOT NULL THEN 'locked' ELSE 'failed' END;
END $$;

REVOKE ALL ON FUNCTION sb_panel_login(p_login text, p_ok boolean, p_token_hash bytea, p_lifetime_s integer, p_idle_s integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_login(p_login text, p_ok boolean, p_token_hash bytea, p_lifetime_s integer, p_idle_s integer) TO sb_panel;
