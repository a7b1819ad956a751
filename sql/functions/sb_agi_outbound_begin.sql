-- Grant or refuse one outbound call.  p_legs: this node's outbound legs now,
-- this one included (GROUP_COUNT); p_max_legs: the node's cap.  Refused when
-- over the cap (legs), when the number is not an active agency's registered
-- line (number), or when less than a minute is left of the hour's budget
-- (minutes).  Every answer is audited; a refusal notifies the wall board.
CREATE OR REPLACE FUNCTION sb_agi_outbound_begin(p_node text, p_uniqueid text, p_purpose text,
    p_number text, p_legs integer, p_max_legs integer,
    OUT outcome text, OUT reason text, OUT leg_id bigint, OUT grant_s integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    pol outbound_policy;
    v_spent bigint;
    v_number text := CASE WHEN p_number ~ '^\+[1-9][0-9]{6,14}$' THEN p_number END;
BEGIN
    SELECT * INTO pol FROM outbound_policy;
    -- one decision at a time for the whole line: two nodes cannot both spend
    -- the last minutes
    PERFORM pg_advisory_xact_lock(hashtext('sb_outbound_budget'));
    SELECT coalesce(sum(coalesce(l.used_s, l.granted_s)), 0) INTO v_spent
      FROM outbound_leg l
     WHERE l.outcome = 'granted' AND l.started_at > now() - interval '1 hour';
    grant_s := least(pol.call_max_minutes * 60, pol.minutes_per_hour * 60 - v_spent)::integer;
    reason := CASE
        WHEN p_legs IS NULL OR p_max_legs IS NULL OR p_legs > p_max_legs THEN 'legs'
        WHEN v_number IS NULL OR NOT EXISTS (
            SELECT 1 FROM agency_line l JOIN agency g USING (agency_id)
             WHERE l.e164 = v_number AND g.suspended_at IS NULL) THEN 'number'
        WHEN grant_s < 60 THEN 'minutes'
    END;
    outcome := CASE WHEN reason IS NULL THEN 'granted' ELSE 'refused' END;
    IF outcome = 'refused' THEN
        grant_s := 0;
    END IF;
    INSERT INTO outbound_leg (node, uniqueid, purpose, number, outcome, reason, granted_s)
    VALUES (p_node, left(p_uniqueid, 150), p_purpose, v_number, outcome, reason, grant_s)
    RETURNING outbound_leg.leg_id INTO leg_id;
    PERFORM sb_audit_append('agi', left(p_uniqueid, 150), NULL, NULL, NULL, 'outbound',
                            outcome,
                            format('%s to %s: leg %s, %s of %s legs, %s s granted, %s of %s '
                                   'min this hour spent%s', p_purpose,
                                   coalesce(v_number, 'an invalid number'), leg_id, p_legs,
                                   p_max_legs, grant_s, v_spent / 60, pol.minutes_per_hour,
                                   coalesce(' (' || reason || ')', '')));
    IF outcome = 'refused' THEN
        PERFORM pg_notify('sb_live', 'outbound');
    END IF;
END $$;

REVOKE ALL ON FUNCTION sb_agi_outbound_begin(p_node text, p_uniqueid text, p_purpose text, p_number text, p_legs integer, p_max_legs integer, OUT outcome text, OUT reason text, OUT leg_id bigint, OUT grant_s integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_agi_outbound_begin(p_node text, p_uniqueid text, p_purpose text, p_number text, p_legs integer, p_max_legs integer, OUT outcome text, OUT reason text, OUT leg_id bigint, OUT grant_s integer) TO sb_agi;
