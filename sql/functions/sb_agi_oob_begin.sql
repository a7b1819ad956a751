-- outcome: started | refused (why); the number is the agency's registered line.
CREATE OR REPLACE FUNCTION sb_agi_oob_begin(p_interface text,
    OUT outcome text, OUT why text, OUT oob_id bigint, OUT e164 text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    a   agent;
    v_uid text;
    r   record;
BEGIN
    SELECT * INTO a FROM agent WHERE interface = left(p_interface, 60)
       AND disabled_at IS NULL;
    IF NOT FOUND THEN
        outcome := 'refused'; why := 'no agent on this phone';
        PERFORM sb_audit_append('agi', NULL, NULL, NULL, NULL, 'oob-dial', 'refused',
                                format('%s: no agent', left(p_interface, 60)));
        RETURN;
    END IF;
    SELECT q.uniqueid INTO v_uid FROM queue_call q
     WHERE q.member_interface = a.interface AND q.answered_at IS NOT NULL
       AND q.ended_at IS NULL AND q.entered_at > now() - interval '1 day'
     ORDER BY q.answered_at DESC LIMIT 1;
    IF v_uid IS NULL THEN
        outcome := 'refused'; why := 'no call in progress';
        PERFORM sb_audit_append(sb_panel_actor(a), NULL, NULL, NULL, NULL, 'oob-dial',
                                'refused', 'desk phone: no call in progress');
        RETURN;
    END IF;
    r := sb_panel_oob_begin(a.agent_id, v_uid, NULL);
    outcome := r.outcome; why := r.why; oob_id := r.oob_id; e164 := r.e164;
END $$;

REVOKE ALL ON FUNCTION sb_agi_oob_begin(p_interface text, OUT outcome text, OUT why text, OUT oob_id bigint, OUT e164 text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_agi_oob_begin(p_interface text, OUT outcome text, OUT why text, OUT oob_id bigint, OUT e164 text) TO sb_agi;
