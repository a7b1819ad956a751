-- The edge's figures since p_since: failed authentications (and from how many
-- addresses), bans in force and placed, outbound calls granted and refused,
-- this hour's outbound minutes against the budget, 911 calls.
CREATE OR REPLACE FUNCTION sb_edge_figures(p_since timestamptz,
    OUT auth_failures bigint, OUT failing_addresses bigint, OUT bans_now bigint,
    OUT bans_since bigint, OUT outbound_granted bigint, OUT outbound_refused bigint,
    OUT outbound_minutes_hour bigint, OUT minutes_per_hour integer,
    OUT emergency_calls bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH f AS (SELECT coalesce(sum(x.failures), 0)::bigint AS n, count(*) AS addresses
                 FROM sb_edge_failures(p_since) x)
    SELECT f.n, f.addresses,
           (SELECT count(*) FROM sip_ban b WHERE b.lifted_at IS NULL AND b.until > now()),
           (SELECT count(*) FROM sip_ban b WHERE b.banned_at >= p_since),
           (SELECT count(*) FROM outbound_leg l WHERE l.started_at >= p_since
               AND l.outcome = 'granted'),
           (SELECT count(*) FROM outbound_leg l WHERE l.started_at >= p_since
               AND l.outcome = 'refused'),
           (SELECT coalesce(sum(coalesce(l.used_s, l.granted_s)), 0) / 60 FROM outbound_leg l
             WHERE l.outcome = 'granted' AND l.started_at > now() - interval '1 hour'),
           (SELECT p.minutes_per_hour FROM outbound_policy p),
           (SELECT count(*) FROM ami_event e WHERE e.event_time >= p_since
               AND e.event = 'UserEvent' AND e.fields->>'UserEvent' = 'SBEmergency'
               AND e.fields->>'Step' = 'dial')
      FROM f
$$;

REVOKE ALL ON FUNCTION sb_edge_figures(p_since timestamp with time zone, OUT auth_failures bigint, OUT failing_addresses bigint, OUT bans_now bigint, OUT bans_since bigint, OUT outbound_granted bigint, OUT outbound_refused bigint, OUT outbound_minutes_hour bigint, OUT minutes_per_hour integer, OUT emergency_calls bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_edge_figures(p_since timestamp with time zone, OUT auth_failures bigint, OUT failing_addresses bigint, OUT bans_now bigint, OUT bans_since bigint, OUT outbound_granted bigint, OUT outbound_refused bigint, OUT outbound_minutes_hour bigint, OUT minutes_per_hour integer, OUT emergency_calls bigint) TO sb_reports;
