-- each caller's wait, entry to end (open while waiting), as sb_call_fact and
-- the waiting sweep use it: a bin's recompute finds who waited during it in
-- one probe, however long ago they came (the upper bound is never below the
-- lower one, so a row whose clocks disagree cannot be refused)
CREATE OR REPLACE FUNCTION sb_wait_span(entered timestamptz, wait_end timestamptz) RETURNS tstzrange
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT tstzrange(entered, CASE WHEN wait_end IS NOT NULL  -- open: no end yet
                                   THEN greatest(entered, wait_end) END, '[]')
$$;
