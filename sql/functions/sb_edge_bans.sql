-- Bans in force now (the nftables set lets each run out by itself too).
CREATE OR REPLACE FUNCTION sb_edge_bans()
RETURNS TABLE (address text, jail text, host text, failures integer, banned_at timestamptz,
               until timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT host(b.address), b.jail, b.host, b.failures, b.banned_at, b.until
      FROM sip_ban b WHERE b.lifted_at IS NULL AND b.until > now()
     ORDER BY b.banned_at
$$;

REVOKE ALL ON FUNCTION sb_edge_bans() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_edge_bans() TO sb_edge;
GRANT EXECUTE ON FUNCTION sb_edge_bans() TO sb_reports;
