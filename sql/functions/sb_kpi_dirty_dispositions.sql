CREATE OR REPLACE FUNCTION sb_kpi_dirty_dispositions() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM sb_kpi_mark_uniqueids(ARRAY(SELECT uniqueid FROM new_rows), '{}');
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM sb_kpi_mark_uniqueids(ARRAY(SELECT uniqueid FROM old_rows), '{}');
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER call_disposition_kpi_ins AFTER INSERT ON call_disposition
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_kpi_dirty_dispositions();

CREATE OR REPLACE TRIGGER call_disposition_kpi_upd AFTER UPDATE ON call_disposition
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_kpi_dirty_dispositions();

CREATE OR REPLACE TRIGGER call_disposition_kpi_del AFTER DELETE ON call_disposition
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sb_kpi_dirty_dispositions();
