CREATE OR REPLACE FUNCTION sb_agi_attempt_begin(p_uniqueid text, p_channel text, p_ani text,
                                     p_agency text, p_officer text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    pol       verify_policy;
    o         record;
    c         verify_claim;
    v_known   boolean := false;
    v_status  text;
    v_count   integer;
    v_locked  timestamptz;
    v_line    boolean := false;
    v_id      bigint;
BEGIN
    SELECT * INTO pol FROM verify_policy;
    p_uniqueid := left(p_uniqueid, 150); p_channel := left(coalesce(p_channel, ''), 80);
    p_ani := left(p_ani, 40); p_agency := left(p_agency, 10); p_officer := left(p_officer, 12);
    IF EXISTS (SELECT 1 FROM ani_throttle WHERE ani = p_ani AND blocked_until > now()) THEN
        v_status := 'throttled';
    END IF;

    SELECT f.officer_id, f.agency_id, f.pin_hash, f.failed_count, f.locked_until
      INTO o
      FROM officer f JOIN agency a USING (agency_id)
     WHERE a.code = p_agency AND f.number = p_officer
       AND f.suspended_at IS NULL AND a.suspended_at IS NULL AND f.pin_hash IS NOT NULL
       FOR UPDATE OF f;
    v_known := FOUND;
    IF v_known THEN
        IF o.locked_until <= now() THEN  -- a lock that ran out starts the count again
            UPDATE officer SET failed_count = 0, locked_until = NULL
             WHERE officer_id = o.officer_id;
            o.failed_count := 0; o.locked_until := NULL;
        END IF;
        v_count := o.failed_count; v_locked := o.locked_until;
        v_line := EXISTS (SELECT 1 FROM agency_line WHERE e164 = p_ani
                                                      AND agency_id = o.agency_id);
    ELSE
        INSERT INTO verify_claim AS t (agency, officer) VALUES (p_agency, p_officer)
        ON CONFLICT (agency, officer) DO UPDATE SET updated_at = now()
        RETURNING * INTO c;  -- the upsert holds the row's lock to the end
        IF c.locked_until <= now() THEN
            UPDATE verify_claim SET failed_count = 0, locked_until = NULL
             WHERE agency = p_agency AND officer = p_officer;
            c.failed_count := 0; c.locked_until := NULL;
        END IF;
        v_count := c.failed_count; v_locked := c.locked_until;
    END IF;

    IF v_status IS NULL AND (v_locked > now() OR v_count >= pol.max_failures) THEN
        v_status := 'locked';
    END IF;
    v_status := coalesce(v_status, CASE WHEN v_known THEN 'ok' ELSE 'unknown' END);

    -- Counted as a failure now, before any hash can leave the database; a right
    -- PIN clears it at the finish of this same attempt.
    IF v_status IN ('ok', 'unknown') THEN
        IF v_known THEN
            UPDATE officer SET failed_count = failed_count + 1 WHERE officer_id = o.officer_id
            RETURNING failed_count INTO v_count;
        ELSE
            UPDATE verify_claim SET failed_count = failed_count + 1, updated_at = now()
             WHERE agency = p_agency AND officer = p_officer
            RETURNING failed_count INTO v_count;
        END IF;
    END IF;

    INSERT INTO verify_attempt (uniqueid, channel, ani, agency, officer, officer_id, status,
                                line_ok, failures, begun_xid)
    VALUES (p_uniqueid, p_channel, p_ani, p_agency, p_officer,
            CASE WHEN v_known THEN o.officer_id END, v_status, v_line, v_count,
            txid_current())
    RETURNING attempt_id INTO v_id;
    RETURN v_id;
END $$;

REVOKE ALL ON FUNCTION sb_agi_attempt_begin(p_uniqueid text, p_channel text, p_ani text, p_agency text, p_officer text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_agi_attempt_begin(p_uniqueid text, p_channel text, p_ani text, p_agency text, p_officer text) TO sb_agi;
