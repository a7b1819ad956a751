"""Prometheus counters of the listener, served on a loopback port."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.received = Counter("sb_ami_frames_received", "AMI frames read from the socket",
                                ["node"], registry=r)
        self.spooled = Counter("sb_ami_frames_spooled", "Frames accepted into the spool",
                               ["node"], registry=r)
        self.written = Counter("sb_ami_events_written", "Event rows committed to PostgreSQL",
                               ["node"], registry=r)
        self.duplicates = Counter("sb_ami_events_duplicate",
                                  "Event rows already in the database (replay)", ["node"],
                                  registry=r)
        self.dropped = Counter("sb_ami_frames_dropped", "Frames not stored, by reason",
                               ["node", "reason"], registry=r)
        self.invalid = Counter("sb_ami_fields_invalid", "Frames with bad fields, by kind",
                               ["node", "kind"], registry=r)
        self.reconnects = Counter("sb_ami_reconnects", "AMI (re)connections", ["node"],
                                  registry=r)
        self.db_errors = Counter("sb_db_errors", "Failed batch writes (retried)", ["node"],
                                 registry=r)
        self.spool_bytes = Gauge("sb_spool_bytes", "Bytes in the spool", ["node"], registry=r)
        self.spool_lag = Gauge("sb_spool_lag_frames", "Spooled frames not yet committed",
                               ["node"], registry=r)
        self.connected = Gauge("sb_ami_connected", "1 while logged in to the node", ["node"],
                               registry=r)
        self.lag = Histogram("sb_ami_commit_lag_seconds", "Frame receive to commit",
                             ["node"], registry=r,
                             buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60))
