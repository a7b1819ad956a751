-- Where a callback may be dialled: the caller's number when it is a registered
-- line, else the first registered line of the agency the caller claimed in the
-- IVR; otherwise nowhere.
CREATE OR REPLACE FUNCTION sb_panel_callback_number(p_request_id bigint,
                                         OUT agency_id integer, OUT name text, OUT e164 text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r callback_request;
BEGIN
    SELECT * INTO r FROM callback_request WHERE request_id = p_request_id;
    SELECT g.agency_id, g.name, l.e164 INTO agency_id, name, e164
      FROM agency_line l JOIN agency g USING (agency_id)
     WHERE l.e164 = r.ani AND g.suspended_at IS NULL;
    IF NOT FOUND THEN
        SELECT g.agency_id, g.name, l.e164 INTO agency_id, name, e164
          FROM verify_attempt v JOIN agency g ON g.code = v.agency
          JOIN agency_line l ON l.agency_id = g.agency_id
         WHERE v.uniqueid = r.uniqueid AND g.suspended_at IS NULL
         ORDER BY v.started_at DESC, l.created_at, l.e164 LIMIT 1;
    END IF;
END $$;

REVOKE ALL ON FUNCTION sb_panel_callback_number(p_request_id bigint, OUT agency_id integer, OUT name text, OUT e164 text) FROM PUBLIC;
