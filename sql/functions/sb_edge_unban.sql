-- A ban lifted (its time ran out, or ops lifted it).  Returns the rows closed.
CREATE OR REPLACE FUNCTION sb_edge_unban(p_address text, p_jail text, p_host text, p_by text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    n integer;
    v_addr inet := p_address::inet;
BEGIN
    UPDATE sip_ban SET lifted_at = now(), lifted_by = p_by
     WHERE address = v_addr AND jail = p_jail AND lifted_at IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN  -- ops lift a ban first, then fail2ban's action says it again
        PERFORM sb_audit_append('edge:' || p_host, NULL, NULL, NULL, NULL, 'sip-unban',
                                'lifted', format('%s jail %s by %s', host(v_addr), p_jail,
                                                 p_by));
    END IF;
    RETURN n;
END $$;

REVOKE ALL ON FUNCTION sb_edge_unban(p_address text, p_jail text, p_host text, p_by text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_edge_unban(p_address text, p_jail text, p_host text, p_by text) TO sb_edge;
