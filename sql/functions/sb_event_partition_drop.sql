-- Drops it: a moment of exclusive lock on ami_event, bounded by the caller's
-- lock_timeout.
CREATE OR REPLACE FUNCTION sb_event_partition_drop(p_name text) RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    EXECUTE format('DROP TABLE %s', sb_event_partition_check(p_name));
END $$;

REVOKE ALL ON FUNCTION sb_event_partition_drop(p_name text) FROM PUBLIC;
