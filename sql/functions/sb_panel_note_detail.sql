-- What the audit row says of an agent's note: its SHA-256, never its text.
CREATE OR REPLACE FUNCTION sb_panel_note_detail(p_note text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_note IS NULL THEN 'no note'
                ELSE 'note sha256 ' || encode(sha256(convert_to(p_note, 'UTF8')), 'hex') END
$$;

REVOKE ALL ON FUNCTION sb_panel_note_detail(p_note text) FROM PUBLIC;
