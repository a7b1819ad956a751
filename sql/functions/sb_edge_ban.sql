-- A ban fail2ban placed: one open row per address and jail (a ban renewed
-- while it lasts moves its end).  Returns the row's id.
CREATE OR REPLACE FUNCTION sb_edge_ban(p_address text, p_jail text, p_host text, p_seconds integer,
                            p_failures integer) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_id bigint;
    v_addr inet := p_address::inet;
BEGIN
    IF p_seconds IS NULL OR p_seconds NOT BETWEEN 1 AND 31536000 THEN
        RAISE EXCEPTION 'sb_edge_ban: a ban lasts 1 s to a year, not %', p_seconds;
    END IF;
    UPDATE sip_ban SET until = now() + make_interval(secs => p_seconds),
                       failures = greatest(failures, p_failures)
     WHERE address = v_addr AND jail = p_jail AND lifted_at IS NULL AND until > now()
    RETURNING ban_id INTO v_id;
    IF v_id IS NULL THEN
        INSERT INTO sip_ban (address, jail, host, failures, until)
        VALUES (v_addr, p_jail, p_host, p_failures, now() + make_interval(secs => p_seconds))
        RETURNING ban_id INTO v_id;
    END IF;
    PERFORM sb_audit_append('edge:' || p_host, NULL, NULL, NULL, NULL, 'sip-ban', 'banned',
                            format('%s jail %s for %s s after %s failures', host(v_addr),
                                   p_jail, p_seconds, coalesce(p_failures::text, '?')));
    RETURN v_id;
END $$;

REVOKE ALL ON FUNCTION sb_edge_ban(p_address text, p_jail text, p_host text, p_seconds integer, p_failures integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_edge_ban(p_address text, p_jail text, p_host text, p_seconds integer, p_failures integer) TO sb_edge;
