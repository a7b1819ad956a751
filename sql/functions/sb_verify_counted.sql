CREATE OR REPLACE FUNCTION sb_verify_counted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r    smallint := sb_verify_rank(NEW.result);
    best verify_best;
BEGIN
    INSERT INTO verify_best VALUES (NEW.uniqueid, sb_kpi_binof(NEW.at), r)
    ON CONFLICT (uniqueid) DO NOTHING;
    IF FOUND THEN
        INSERT INTO verify_bin AS v VALUES (sb_kpi_binof(NEW.at), r, 1)
        ON CONFLICT (bin, rank) DO UPDATE SET calls = v.calls + 1;
        RETURN NULL;
    END IF;
    SELECT * INTO best FROM verify_best WHERE uniqueid = NEW.uniqueid FOR UPDATE;
    IF r > best.rank THEN
        UPDATE verify_best SET rank = r WHERE uniqueid = NEW.uniqueid;
        UPDATE verify_bin SET calls = calls - 1 WHERE bin = best.bin AND rank = best.rank;
        INSERT INTO verify_bin AS v VALUES (best.bin, r, 1)
        ON CONFLICT (bin, rank) DO UPDATE SET calls = v.calls + 1;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER audit_log_verify_counted AFTER INSERT ON audit_log
    FOR EACH ROW WHEN (NEW.action = 'verify' AND NEW.uniqueid IS NOT NULL
                       AND NEW.result NOT IN ('refused', 'error', 'shed'))
    EXECUTE FUNCTION sb_verify_counted();
