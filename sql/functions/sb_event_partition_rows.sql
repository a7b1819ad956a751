CREATE OR REPLACE FUNCTION sb_event_partition_rows(p_name text) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s', sb_event_partition_check(p_name)) INTO n;
    RETURN n;
END $$;

REVOKE ALL ON FUNCTION sb_event_partition_rows(p_name text) FROM PUBLIC;
