"""Prometheus counters of the listener, served on a loopback port."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

MAX_REASONS = 64  # distinct label values per counter and node; the rest is "other"
_LABEL_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# the listener's own reasons: always their own series
FIXED_REASONS = frozenset({"client_error", "nul_frame", "spool_full", "oversize", "poison",
                           "derive_error", "not_an_event", "response"})


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
        # Asterisk's security events (failed authentications, ACL refusals...), by
        # name: a fixed list (normalise.SECURITY_EVENTS), so the labels are bounded
        self.security = Counter("sb_ami_security_events", "Asterisk security events "
                                "stored (someone failed to authenticate or was refused)",
                                ["node", "event"], registry=r)
        self.reconciled = Counter("sb_reconcile_fixed", "Calls the queue_log reconciler "
                                  "created or corrected, by what was off",
                                  ["node", "kind"], registry=r)
        self._seen: dict[tuple[str, str], set[str]] = {}

    def bounded(self, counter: str, node: str, value: str) -> str:
        """A label value for ``counter``: itself while fewer than MAX_REASONS were
        seen for the node (and it looks like a name), else "other".  Event
        names come from outside: 50,000 invented ones must not make 50,000
        series."""
        seen = self._seen.setdefault((counter, node), set())
        if value in seen or value in FIXED_REASONS:
            return value
        if len(seen) >= MAX_REASONS or not _LABEL_RE.match(value):
            return "other"
        seen.add(value)
        return value

    def drop(self, node: str, reason: str, n: int = 1) -> None:
        """Count ``n`` frames not stored, by reason (an event name or a cause)."""
        self.dropped.labels(node, self.bounded("dropped", node, reason)).inc(n)

    def invalid_fields(self, node: str, kind: str, n: int = 1) -> None:
        self.invalid.labels(node, self.bounded("invalid", node, kind)).inc(n)
