-- Retention of raw AMI events (issue 15; admin/retention.py): a day partition
-- is counted and dropped by these functions, which take its name as data and
-- check it (one of ami_event's day partitions, ami_event_YYYYMMDD), so the
-- service never builds SQL around a table name.

CREATE FUNCTION sb_event_partition_check(p_name text) RETURNS regclass
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    rel regclass;
BEGIN
    IF p_name !~ '^ami_event_[0-9]{8}$' THEN
        RAISE EXCEPTION 'not a day partition of ami_event: %', p_name;
    END IF;
    rel := to_regclass(quote_ident(p_name));
    IF rel IS NULL OR NOT EXISTS (SELECT 1 FROM pg_inherits
                                   WHERE inhrelid = rel AND inhparent = 'ami_event'::regclass)
    THEN
        RAISE EXCEPTION 'not a day partition of ami_event: %', p_name;
    END IF;
    RETURN rel;
END $$;

CREATE FUNCTION sb_event_partition_rows(p_name text) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s', sb_event_partition_check(p_name)) INTO n;
    RETURN n;
END $$;

-- Drops it: a moment of exclusive lock on ami_event, bounded by the caller's
-- lock_timeout.
CREATE FUNCTION sb_event_partition_drop(p_name text) RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    EXECUTE format('DROP TABLE %s', sb_event_partition_check(p_name));
END $$;

REVOKE ALL ON FUNCTION sb_event_partition_check(text), sb_event_partition_rows(text),
    sb_event_partition_drop(text) FROM PUBLIC;
