CREATE OR REPLACE FUNCTION sb_listener_presence(p_node text, p_queue text[], p_interface text[],
                                     p_name text[], p_logged_in boolean[], p_paused boolean[],
                                     p_reason text[], p_at timestamptz[])
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_changed integer := 0;
    n integer;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_queue, 1), 0) LOOP
        CONTINUE WHEN p_interface[i] !~ '^[A-Za-z]{2,10}/[A-Za-z0-9_.@-]{1,80}$'
                   OR length(p_queue[i]) NOT BETWEEN 1 AND 80;
        INSERT INTO agent_presence AS a (queue, interface, member_name, logged_in, paused,
                                         reason, at, node)
        VALUES (p_queue[i], p_interface[i], left(p_name[i], 80), p_logged_in[i],
                p_logged_in[i] AND p_paused[i],
                CASE WHEN p_logged_in[i] AND p_paused[i] THEN left(p_reason[i], 80) END,
                p_at[i], left(p_node, 80))
        ON CONFLICT (queue, interface) DO UPDATE
            SET member_name = coalesce(EXCLUDED.member_name, a.member_name),
                logged_in = EXCLUDED.logged_in, paused = EXCLUDED.paused,
                reason = EXCLUDED.reason, at = EXCLUDED.at, node = EXCLUDED.node
            WHERE EXCLUDED.at >= a.at
              AND (a.logged_in, a.paused, coalesce(a.reason, ''))
                  IS DISTINCT FROM (EXCLUDED.logged_in, EXCLUDED.paused,
                                    coalesce(EXCLUDED.reason, ''));
        GET DIAGNOSTICS n = ROW_COUNT;
        v_changed := v_changed + n;
    END LOOP;
    IF v_changed > 0 THEN
        PERFORM pg_notify('sb_presence', left(p_node, 80));
    END IF;
    RETURN v_changed;
END $$;

REVOKE ALL ON FUNCTION sb_listener_presence(p_node text, p_queue text[], p_interface text[], p_name text[], p_logged_in boolean[], p_paused boolean[], p_reason text[], p_at timestamp with time zone[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_listener_presence(p_node text, p_queue text[], p_interface text[], p_name text[], p_logged_in boolean[], p_paused boolean[], p_reason text[], p_at timestamp with time zone[]) TO sb_listener;
