-- 4. 911 --------------------------------------------------------------------------------
-- The audit row of a 911 call, written by its hangup handler.  Returns recorded.
CREATE OR REPLACE FUNCTION sb_agi_emergency(p_node text, p_uniqueid text, p_phone text, p_elin text,
                                 p_place text, p_status text, p_answered_s integer)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM sb_audit_append('agi', left(p_uniqueid, 150), NULL, NULL, NULL, 'emergency-911',
                            coalesce(nullif(lower(left(p_status, 20)), ''), 'unknown'),
                            format('phone %s on %s, callback %s, place %s, answered %s s',
                                   left(p_phone, 40), left(p_node, 63), left(p_elin, 20),
                                   left(p_place, 200), coalesce(p_answered_s, 0)));
    PERFORM pg_notify('sb_live', 'emergency');
    RETURN 'recorded';
END $$;

REVOKE ALL ON FUNCTION sb_agi_emergency(p_node text, p_uniqueid text, p_phone text, p_elin text, p_place text, p_status text, p_answered_s integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_agi_emergency(p_node text, p_uniqueid text, p_phone text, p_elin text, p_place text, p_status text, p_answered_s integer) TO sb_agi;
