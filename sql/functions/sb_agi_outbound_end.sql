-- What a granted call used (ANSWEREDTIME at hangup): from now on it counts that
-- much, not its grant.  Returns recorded | unknown.
CREATE OR REPLACE FUNCTION sb_agi_outbound_end(p_leg_id bigint, p_uniqueid text, p_answered_s integer)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE outbound_leg
       SET used_s = least(greatest(coalesce(p_answered_s, 0), 0), granted_s), ended_at = now()
     WHERE leg_id = p_leg_id AND uniqueid = left(p_uniqueid, 150) AND outcome = 'granted'
       AND ended_at IS NULL;
    RETURN CASE WHEN FOUND THEN 'recorded' ELSE 'unknown' END;
END $$;

REVOKE ALL ON FUNCTION sb_agi_outbound_end(p_leg_id bigint, p_uniqueid text, p_answered_s integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_agi_outbound_end(p_leg_id bigint, p_uniqueid text, p_answered_s integer) TO sb_agi;
