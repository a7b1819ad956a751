-- What Asterisk said to the Originate (accepted | failed), and whether the
-- agency answered: an audit row each.
CREATE OR REPLACE FUNCTION sb_panel_oob_result(p_oob_id bigint, p_originate text, p_answered boolean)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    c oob_call;
BEGIN
    UPDATE oob_call SET originate = CASE WHEN p_originate IN ('accepted', 'failed')
                                          THEN p_originate ELSE 'failed' END,
                        answered = p_answered
     WHERE oob_id = p_oob_id AND originate IS NULL RETURNING * INTO c;
    IF FOUND THEN
        PERFORM sb_audit_append('agent:' || (SELECT login FROM agent
                                              WHERE agent_id = c.agent_id),
                                c.uniqueid, NULL, (SELECT code FROM agency
                                                    WHERE agency_id = c.agency_id), NULL,
                                'oob-call', c.originate,
                                format('oob %s to %s%s', c.oob_id, c.e164,
                                       CASE WHEN p_answered THEN ' answered' ELSE '' END));
    END IF;
END $$;

REVOKE ALL ON FUNCTION sb_panel_oob_result(p_oob_id bigint, p_originate text, p_answered boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_oob_result(p_oob_id bigint, p_originate text, p_answered boolean) TO sb_panel;
