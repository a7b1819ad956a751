"""The AGI half of ``switchboard demo``: fake reference data, the real FastAGI
service on a loopback port, and scripted callers (agi.fakecall, on the recorded
Asterisk bytes) running verify and lookup with every kind of outcome."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime

import asyncpg

from switchboard import db, log
from switchboard.admin import ops
from switchboard.agi import fakecall
from switchboard.agi.app import AgiService, make_hasher
from switchboard.auditlog import session_settings, settings_key
from switchboard.configfiles import generated_secret
from switchboard.settings import AgiSettings, Settings
from switchboard.sqlfile import queries

DEMO_PIN = "739184"  # the demo officers' PIN (fake data only)
SEED = db.SQL_DIR / "seed" / "demo.sql"
FOUND, MISSING, BAD_CHECK = "10000016", "10000057", "10000017"


def demo_agi_settings(settings: Settings) -> AgiSettings:
    """The configured AGI settings; without a pepper, one kept in the state
    directory (mode 0600, created once) so the demo PINs stay valid."""
    s = replace(settings.agi, host="127.0.0.1", port=0)
    if s.pepper is not None:
        return s
    pepper, _ = generated_secret(settings.state_dir / "pin-pepper", 48)
    return replace(s, pepper=pepper.encode())


async def seed(url: str, s: AgiSettings) -> None:
    # as the ops commands do: their audit rows signed with the audit key
    conn = await asyncpg.connect(url, server_settings=session_settings(settings_key(s)))
    try:
        await conn.execute(SEED.read_text())
        hasher = make_hasher(s)
        for code, number in (("42", "1001"), ("42", "1002"), ("42", "1003"), ("77", "5001")):
            await ops.officer_set_pin(conn, hasher, code, number, DEMO_PIN)  # also unlocks
    finally:
        await conn.close()


def demo_calls(round_no: int) -> list[list[fakecall.Call]]:
    """One round: each inner list is one caller's calls (verify, then lookup)."""
    uid = itertools.count(1)

    def u() -> str:
        return f"demo-{int(time.time())}-{round_no}.{next(uid)}"

    right = ["42", "1001", DEMO_PIN]
    a = fakecall.attested
    calls: list[list[fakecall.Call]] = []
    # the agency's registered lines: attested A (full), attested B and failed
    # validation (both line-only: the agent calls back first)
    for number, case, verdict in (
            ("+16155550100", FOUND, "TN-Validation-Passed-A"),
            ("(615) 555-0101", "10000024", "TN-Validation-Passed-B"),
            ("+16155550100", MISSING, "TN-Validation-Failed")):
        x = u()
        calls.append([fakecall.Call("verify", x, number, right, a(number, verdict)),
                      fakecall.Call("lookup", x, number, [case],
                                    {"SB_VERIFIED": "full"})])
    x = u()  # the right PIN from a number that is not a registered line
    calls.append([fakecall.Call("verify", x, "+16155550155", ["42", "1002", DEMO_PIN],
                                a("+16155550155")),
                  fakecall.Call("lookup", x, "+16155550155", [BAD_CHECK, FOUND],
                                {"SB_VERIFIED": "line-only"})])
    x = u()  # a typo, then right
    calls.append([fakecall.Call("verify", x, "+16155550170",
                                ["77", "5001", "000000", "77", "5001", DEMO_PIN],
                                a("+16155550170"))])
    calls.append([fakecall.Call("verify", u(), "anonymous", ["42", "1003", "111111"] * 3)])
    calls.append([fakecall.Call("verify", u(), "+16155550100", ["42", fakecall.HANGUP])])
    calls.append([fakecall.Call("verify", u(), "+16155550100", ["", "", ""])])
    return calls


async def run_agi_traffic(settings: Settings, url: str, agi_url: str, *, rounds: int
                          ) -> dict[str, Counter[str]]:
    """Seed, serve, play the demo callers; return what the dialplan got, per
    variable (SB_VERIFIED, SB_LOOKUP) and value ("(hung up)" when none)."""
    logger = log.get("demo")
    s = demo_agi_settings(settings)
    got: dict[str, Counter[str]] = {"SB_VERIFIED": Counter(), "SB_CALLER_ID": Counter(),
                                    "SB_LOOKUP": Counter()}
    await seed(url, s)
    service = AgiService(s, agi_url)  # the service's own login; seeding is ops' (owner)
    port = await service.start()
    logger.info("demo_agi_calls", fastagi=f"127.0.0.1:{port}", rounds=rounds)
    try:
        async def caller(seq: list[fakecall.Call]) -> None:
            for call in seq:
                call.key_delay_s = 0.02
                out = await fakecall.play(call, port)
                names = (("SB_VERIFIED", "SB_CALLER_ID") if call.script == "verify"
                         else ("SB_LOOKUP",))
                for name in names:
                    got[name][out.variables.get(name, "(hung up)")] += 1
        for r in range(rounds):
            await asyncio.gather(*(caller(c) for c in demo_calls(r)))
        # the lockout officer: two more wrong PINs lock it (5 in all)
        out = await fakecall.play(fakecall.Call("verify", f"demo-{int(time.time())}-lock",
                                                "anonymous", ["42", "1003", "111111"] * 2),
                                  port)
        got["SB_VERIFIED"][out.variables.get("SB_VERIFIED", "(hung up)")] += 1
    finally:
        await service.stop()
    return got


async def print_agi_summary(url: str, since: datetime,
                            got: dict[str, Counter[str]]) -> None:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(queries("ops.sql")["audit_outcomes"], since)
        report = await ops.audit_verify(conn)
    finally:
        await conn.close()
    by_action: dict[str, list[str]] = {}
    for r in rows:
        if not r["action"].startswith("ops-"):
            by_action.setdefault(r["action"], []).append(f"{r['result']} {r['n']}")
    print("AGI calls, by what the dialplan got:")
    for name, counts in got.items():
        print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print("AGI attempts (audit log):")
    for action in ("caller-id", "verify", "lockout", "lookup", "throttle"):
        if action in by_action:
            print(f"  {action:>8}: " + ", ".join(by_action[action]))
    print(f"  audit chain {'intact' if report.ok else 'BROKEN'}: {report.rows} rows")
