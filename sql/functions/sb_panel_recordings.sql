-- The recorded calls a supervisor may play: the newest first, or one call's.
CREATE OR REPLACE FUNCTION sb_panel_recordings(p_agent_id integer, p_uniqueid text, p_limit integer)
RETURNS TABLE (recording_id bigint, uniqueid text, queue text, member_name text,
               started_at timestamptz, seconds numeric, bytes bigint, held boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    me agent := sb_panel_agent_row(p_agent_id);
BEGIN
    IF me.agent_id IS NULL OR me.role <> 'supervisor' THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT r.recording_id, r.uniqueid, q.queue, q.member_name, r.started_at, r.seconds,
           r.bytes, EXISTS (SELECT 1 FROM legal_hold h WHERE h.uniqueid = r.uniqueid)
      FROM recording r
      LEFT JOIN LATERAL (SELECT c.queue, c.member_name FROM queue_call c
                          WHERE c.uniqueid = r.uniqueid AND c.answered_at IS NOT NULL
                          ORDER BY c.answered_at DESC LIMIT 1) q ON true
     WHERE r.purged_at IS NULL AND (p_uniqueid IS NULL OR r.uniqueid = p_uniqueid)
     ORDER BY r.started_at DESC
     LIMIT least(greatest(p_limit, 1), 200);
END $$;

REVOKE ALL ON FUNCTION sb_panel_recordings(p_agent_id integer, p_uniqueid text, p_limit integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_recordings(p_agent_id integer, p_uniqueid text, p_limit integer) TO sb_panel;
