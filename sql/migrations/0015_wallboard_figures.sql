-- What supervisors of a verified line watch on the wall board (issue 13): how
-- today's callers were verified, and the callback requests waiting.  sb_reports
-- cannot read the audit log or callers' numbers; these functions give it counts
-- and ages only.

