CREATE OR REPLACE VIEW sb_call_fact AS
SELECT c.node, c.uniqueid, c.queue, c.entered_at,
       CASE WHEN c.outcome = 'cut' THEN 'answered' ELSE c.outcome END AS outcome,
       c.hold_s, c.talk_s, c.rna_count, c.member_interface, c.member_name,
       coalesce(c.hold_s::numeric,
                extract(epoch FROM coalesce(c.answered_at, c.left_at, c.ended_at)
                                   - c.entered_at)::numeric(12, 3)) AS wait_s,
       coalesce(c.answered_at, c.left_at, c.ended_at) AS wait_end,
       d.wrapup_s
FROM queue_call c
LEFT JOIN call_disposition d ON d.uniqueid = c.uniqueid AND c.answered_at IS NOT NULL
WHERE c.outcome IS DISTINCT FROM 'joined-empty'
  AND (c.outcome IS DISTINCT FROM 'cut' OR c.answered_at IS NOT NULL);

REVOKE ALL ON TABLE sb_call_fact FROM PUBLIC;
GRANT SELECT ON TABLE sb_call_fact TO sb_reports;
