-- Create the partition holding one UTC day (idempotent). Returns its name.
CREATE OR REPLACE FUNCTION sb_ensure_event_partition(day date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    part text := format('ami_event_%s', to_char(day, 'YYYYMMDD'));
BEGIN
    IF to_regclass(part) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF ami_event FOR VALUES FROM (%L) TO (%L)',
            part,
            (day::timestamp AT TIME ZONE 'UTC'),
            ((day + 1)::timestamp AT TIME ZONE 'UTC'));
    END IF;
    RETURN part;
END
$$;
ALTER FUNCTION sb_ensure_event_partition(date) SECURITY DEFINER;
ALTER FUNCTION sb_ensure_event_partition(date) SET search_path = public, pg_temp;

REVOKE ALL ON FUNCTION sb_ensure_event_partition(day date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sb_ensure_event_partition(day date) TO sb_listener;
