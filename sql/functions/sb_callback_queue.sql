-- A callback request counts for the last queue its call was in ('(none)': it
-- never queued), in the interval it was requested.
CREATE OR REPLACE FUNCTION sb_callback_queue(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (requested_at timestamptz, queue text)
LANGUAGE sql STABLE AS $$
    SELECT r.requested_at, coalesce(q.queue, '(none)')
      FROM callback_request r
      LEFT JOIN LATERAL (SELECT c.queue FROM queue_call c WHERE c.uniqueid = r.uniqueid
                          ORDER BY c.entered_at DESC LIMIT 1) q ON true
     WHERE r.requested_at >= p_from AND r.requested_at < p_to
$$;
