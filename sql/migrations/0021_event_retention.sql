-- Retention of raw AMI events (issue 15; admin/retention.py): a day partition
-- is counted and dropped by these functions, which take its name as data and
-- check it (one of ami_event's day partitions, ami_event_YYYYMMDD), so the
-- service never builds SQL around a table name.

