-- A standby listener per node (issue 13): two listener processes may run for
-- one Asterisk node; the one holding the node's lease reads AMI and writes, the
-- other waits.  The holder renews the lease every second; when it dies or hangs
-- the lease runs out (SB_LISTENER_LEASE_S, 3 s) and the standby takes it.  Every
-- batch commits only while its writer still holds the lease (checked in the
-- same transaction), so a listener that hung and wakes up after the takeover
-- writes nothing more: it exits, and systemd starts it again as the standby.
CREATE TABLE listener_lease (
    node        text PRIMARY KEY,
    holder      text NOT NULL CHECK (length(holder) <= 200),
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_listener') THEN
        EXECUTE 'GRANT SELECT, INSERT, UPDATE ON listener_lease TO sb_listener';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sb_reports') THEN
        EXECUTE 'GRANT SELECT ON listener_lease TO sb_reports';
    END IF;
END $$;
