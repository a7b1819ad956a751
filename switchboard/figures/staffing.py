"""Erlang C: agents needed for a service-level target.

Traffic A = arrivals per second x AHT (Erlangs).  With N agents (N > A) the
probability that a caller waits is Erlang C, computed through the Erlang B
recursion B(0) = 1, B(n) = A B(n-1) / (n + A B(n-1)), which is exact and
stable for hundreds of agents; C = N B / (N - A (1 - B)).  The share answered
within T seconds is 1 - C exp(-(N - A) T / AHT).  Agents to schedule = agents
needed / (1 - shrinkage) (breaks, training, absence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def erlang_c(agents: int, traffic: float) -> float:
    if traffic <= 0:
        return 0.0
    if agents <= traffic:
        return 1.0
    b = 1.0
    for n in range(1, agents + 1):
        b = traffic * b / (n + traffic * b)
    return agents * b / (agents - traffic * (1 - b))


def service_level(agents: int, traffic: float, aht_s: float, target_s: float) -> float:
    if traffic <= 0:
        return 1.0
    if agents <= traffic:
        return 0.0
    return 1 - erlang_c(agents, traffic) * math.exp(-(agents - traffic) * target_s / aht_s)


@dataclass(frozen=True)
class Need:
    traffic_erlangs: float
    agents: int  # on the phones
    scheduled: int  # with shrinkage
    service_level: float  # what that many agents achieve
    asa_s: float


def agents_needed(calls: float, period_s: float, aht_s: float, *, sl_target: float = 0.8,
                  target_s: float = 20, shrinkage: float = 0.3, max_agents: int = 10_000
                  ) -> Need:
    if not 0 <= shrinkage < 1:
        raise ValueError("shrinkage is a share in [0, 1)")
    if not 0 < sl_target < 1:
        raise ValueError("the service-level target is a share in (0, 1)")
    traffic = calls / period_s * aht_s if period_s > 0 and aht_s > 0 else 0.0
    if traffic <= 0:
        return Need(0.0, 0, 0, 1.0, 0.0)
    n = max(1, math.floor(traffic) + 1)
    while service_level(n, traffic, aht_s, target_s) < sl_target:
        n += 1
        if n > max_agents:
            raise ValueError(f"more than {max_agents} agents needed")
    asa = erlang_c(n, traffic) * aht_s / (n - traffic)
    return Need(round(traffic, 2), n, math.ceil(n / (1 - shrinkage)),
                round(service_level(n, traffic, aht_s, target_s), 4), round(asa, 1))
