CREATE OR REPLACE FUNCTION sb_caller_id_counted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO caller_id_bin AS b
    SELECT sb_kpi_binof(checked_at), sb_caller_id_kind(attest, result), count(*)
      FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (bin, kind) DO UPDATE SET calls = b.calls + EXCLUDED.calls;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER caller_id_check_counted AFTER INSERT ON caller_id_check
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION sb_caller_id_counted();
