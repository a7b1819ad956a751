-- At the panel's start: sessions a stopped panel left open end as unknown.
CREATE OR REPLACE FUNCTION sb_panel_spy_orphans() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN SELECT spy_id FROM spy_session WHERE ended_at IS NULL LOOP
        PERFORM sb_panel_spy_state(r.spy_id, 'unknown');
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

REVOKE ALL ON FUNCTION sb_panel_spy_orphans() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_panel_spy_orphans() TO sb_panel;
