-- The wall board follows bans as it follows calls.
CREATE OR REPLACE FUNCTION sb_edge_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sb_live', 'edge');
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER sip_ban_notify AFTER INSERT OR UPDATE ON sip_ban
    FOR EACH STATEMENT EXECUTE FUNCTION sb_edge_notify();

REVOKE ALL ON FUNCTION sb_edge_notify() FROM PUBLIC;
