"""The wall board's figures for Prometheus (SB_METRICS_ADDR of the board): the
gauges the alert rules in dialplan/edge/prometheus/ read, set from each
snapshot the board computes (switchboard/web/wallboard.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Gauge


class BoardGauges:
    def __init__(self, sl_target: float, wait_alert_s: float) -> None:
        self.registry = CollectorRegistry()
        labels = ["queue"]
        self.g_waiting = Gauge("sb_queue_waiting", "Callers waiting now", labels,
                               registry=self.registry)
        self.g_longest = Gauge("sb_queue_longest_wait_seconds", "Longest current wait",
                               labels, registry=self.registry)
        self.g_agents = Gauge("sb_queue_agents", "Agents by state now", ["queue", "state"],
                              registry=self.registry)
        self.g_sl = Gauge("sb_queue_service_level_today", "Service level today (sql/kpi.md)",
                          labels, registry=self.registry)
        self.g_offered = Gauge("sb_queue_offered_today", "Calls offered today", labels,
                               registry=self.registry)
        self.g_alerts = Gauge("sb_verify_alerts_today", "Officer locks (lockout), blocked "
                              "numbers (throttle), attempts shed under load (shed) and "
                              "refused finishes or lookups (refused) today", ["kind"],
                              registry=self.registry)
        self.g_cb_stale = Gauge("sb_callbacks_stale", "Callback requests not started within "
                                "the site's threshold", registry=self.registry)
        # the SIP edge (issue 22; alert rules in dialplan/edge/prometheus/)
        self.g_bans = Gauge("sb_sip_bans_active", "Addresses banned now (fail2ban, recorded)",
                            registry=self.registry)
        self.g_auth_fail = Gauge("sb_sip_auth_failures_hour", "Failed SIP authentications "
                                 "in the last hour (Asterisk's security events)",
                                 registry=self.registry)
        self.g_e911_active = Gauge("sb_emergency_calls_active", "911 calls in progress",
                                   registry=self.registry)
        self.g_e911_today = Gauge("sb_emergency_calls_today", "911 calls today",
                                  registry=self.registry)
        self.g_out_refused = Gauge("sb_outbound_refused_today", "Outbound calls refused by "
                                   "the toll-fraud caps today", registry=self.registry)
        self.g_out_minutes = Gauge("sb_outbound_minutes_hour", "Outbound minutes granted or "
                                   "used in the last hour", registry=self.registry)
        # the site's targets, so that the alert rules compare with the same
        # values the board shows (dialplan/edge/prometheus/switchboard-line.rules.yml)
        self.g_target_sl = Gauge("sb_target_service_level", "The service level target the "
                                 "board shows", registry=self.registry)
        self.g_target_wait = Gauge("sb_target_wait_alert_seconds", "A caller waiting longer "
                                   "is an alert (SB_WAIT_ALERT_S)", registry=self.registry)
        self.g_target_sl.set(sl_target)
        self.g_target_wait.set(wait_alert_s)

    def update(self, snap: dict[str, Any]) -> None:
        self.g_cb_stale.set(snap.get("callbacks_stale", {}).get("n", 0))
        edge = snap.get("edge") or {}
        self.g_bans.set(len(edge.get("bans", [])))
        self.g_auth_fail.set(edge.get("auth_failures_hour", 0))
        self.g_e911_active.set(edge.get("emergency_calls_active", 0))
        self.g_e911_today.set(edge.get("emergency_calls_today", 0))
        self.g_out_refused.set(edge.get("outbound_refused_today", 0))
        self.g_out_minutes.set(edge.get("outbound_minutes_hour", 0))
        for kind, n in snap.get("alerts", {}).items():
            self.g_alerts.labels(kind).set(n)
        for q in snap["queues"]:
            name = q["queue"]
            self.g_waiting.labels(name).set(q["waiting"])
            oldest = q["oldest_entered_at"]
            self.g_longest.labels(name).set(
                (datetime.fromisoformat(snap["server_time"])
                 - datetime.fromisoformat(oldest)).total_seconds() if oldest else 0)
            for state in ("available", "on_call", "paused"):
                self.g_agents.labels(name, state).set(q[state])
            self.g_sl.labels(name).set(q["service_level"] if q["service_level"] is not None
                                       else float("nan"))
            self.g_offered.labels(name).set(q["offered"])
