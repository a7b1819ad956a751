"""The audit chain, the AGI role's privileges, the logs, and failures (database
down, a handler that raises)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from switchboard.admin import ops
from switchboard.agi.app import make_hasher
from switchboard.agi.fakecall import HANGUP
from switchboard.pgcluster import LocalCluster
from tests.agi.conftest import (
    AGENCY,
    CASE_FOUND,
    CASE_MISSING,
    LINE,
    OFFICER,
    PIN,
    Agi,
    RunAgi,
    agi_settings,
    uniqueid,
)
from tests.helpers import as_service, refused

RIGHT = [AGENCY, OFFICER, PIN]


async def traffic(agi: Agi) -> None:
    """A bit of everything: full, wrong PIN, lookup found / not found, hangup."""
    uid = uniqueid()
    await agi.call("verify", RIGHT, uid=uid)
    await agi.call("lookup", [CASE_FOUND], uid=uid, variables={"SB_VERIFIED": "full"})
    uid = uniqueid()
    await agi.call("verify", [AGENCY, OFFICER, "111999", *RIGHT], uid=uid)
    await agi.call("lookup", [CASE_MISSING], uid=uid, variables={"SB_VERIFIED": "full"})
    await agi.call("verify", [AGENCY, HANGUP])


async def chain(db_url: str) -> ops.ChainReport:
    conn = await asyncpg.connect(db_url)
    try:
        return await ops.audit_verify(conn)
    finally:
        await conn.close()


async def tamper(cluster: LocalCluster, db_url: str, sql: str) -> None:
    """As a superuser who bypasses the append-only triggers."""
    conn = await asyncpg.connect(cluster.superuser_url().rsplit("/", 1)[0] + "/"
                                 + db_url.rsplit("/", 1)[1])
    try:
        await conn.execute("SET session_replication_role = replica")
        await conn.execute(sql)
    finally:
        await conn.close()


TAMPERING = [
    ("edit a result", "UPDATE audit_log SET result = 'full' WHERE result = 'wrong-pin'",
     "content does not match"),
    ("delete a row", "DELETE FROM audit_log WHERE result = 'wrong-pin'", "are missing"),
    ("delete the last row of a chain",
     "DELETE FROM audit_log WHERE (chain, seq) = (SELECT chain, max(seq) FROM audit_log "
     "WHERE chain = (SELECT chain FROM audit_log WHERE result = 'wrong-pin') GROUP BY chain)",
     "removed from the end"),
    ("replace a row with its hash recomputed",
     "UPDATE audit_log SET result = 'full', hash = sb_audit_digest(prev_hash, chain, seq, at, "
     "actor, uniqueid, ani, agency, officer, action, 'full', detail) "
     "WHERE result = 'wrong-pin'", "link to the row before"),
    ("move a row to another chain",
     "UPDATE audit_log SET chain = 99 WHERE result = 'wrong-pin'", "no head"),
]


@pytest.mark.parametrize(("sql", "problem"), [t[1:] for t in TAMPERING],
                         ids=[t[0] for t in TAMPERING])
def test_audit_verify_reports_the_first_broken_link(run_agi: RunAgi, pg_cluster: LocalCluster,
                                                    db_url: str, sql: str,
                                                    problem: str) -> None:
    async def scenario(agi: Agi) -> Any:
        await traffic(agi)
        before = await chain(db_url)
        row = (await agi.fetch("SELECT chain, seq FROM audit_log "
                               "WHERE result = 'wrong-pin'"))[0]
        await tamper(pg_cluster, db_url, sql)
        return before, await chain(db_url), row["chain"], row["seq"]
    before, after, chain_no, seq = run_agi(scenario)
    assert before.ok and before.rows >= 13
    assert not after.ok and problem in (after.problem or "")
    if "end" not in problem and "head" not in problem:
        # an edit shows at the row itself (or, with its hash recomputed, at the next)
        assert after.broken_chain == chain_no and after.broken_at in (seq, seq + 1)


def test_audit_rows_cannot_be_changed_even_by_the_owner(run_agi: RunAgi, db_url: str) -> None:
    async def scenario(agi: Agi) -> Any:
        await traffic(agi)
        conn = await asyncpg.connect(db_url)
        errors = []
        try:
            for sql in ("UPDATE audit_log SET result = 'x'", "DELETE FROM audit_log",
                        "TRUNCATE audit_log"):
                try:
                    await conn.execute(sql)
                except asyncpg.RaiseError as exc:
                    errors.append(str(exc))
        finally:
            await conn.close()
        return errors
    errors = run_agi(scenario)
    assert len(errors) == 3 and all("append-only" in e for e in errors)


AGI_ROLE_REFUSED = [
    "SELECT pin_hash FROM officer",
    "SELECT * FROM audit_log",
    "UPDATE audit_log SET result = 'x'",
    "DELETE FROM audit_log",
    "INSERT INTO audit_log (seq, at, actor, action, result, prev_hash, hash) "
    "VALUES (999, now(), 'x', 'x', 'x', '', '')",
    "SELECT sb_audit_append('agi', 'u', 'a', '1', '1', 'verify', 'full')",
    "UPDATE officer SET locked_until = NULL",
    "SELECT * FROM case_record",
    "UPDATE audit_head SET seq = 0",
]


def test_the_agi_role_may_only_execute_its_functions(run_agi: RunAgi, db_url: str) -> None:
    async def scenario(agi: Agi) -> Any:
        conn = await asyncpg.connect(as_service(db_url, "agi"))
        try:
            assert await conn.fetchval("SELECT current_user") == "sb_agi"
            not_allowed = await refused(conn, AGI_ROLE_REFUSED)
            allowed = await conn.fetchval(
                "SELECT sb_agi_audit('u1', '+1', 'verify', 'hangup')")
            for action, result in (("ops-unlock", "hangup"), ("verify", "full")):
                with pytest.raises(asyncpg.RaiseError, match="not allowed"):
                    await conn.fetchval("SELECT sb_agi_audit('u1', '+1', $1, $2)", action,
                                        result)
        finally:
            await conn.close()
        return not_allowed, allowed
    not_allowed, allowed = run_agi(scenario)
    assert not_allowed == AGI_ROLE_REFUSED
    assert allowed > 0


async def as_agi(db_url: str) -> asyncpg.Connection:
    """What a subverted AGI service holds: sb_agi's own login."""
    return await asyncpg.connect(as_service(db_url, "agi"))


def test_a_finish_without_a_begun_attempt_mints_nothing(run_agi: RunAgi, db_url: str) -> None:
    """Before: sb_agi_verify_finish(... p_pin_ok => true ...) with no attempt
    returned 'full' and wrote a genuine-looking audit row."""
    async def scenario(agi: Agi) -> Any:
        conn = await as_agi(db_url)
        try:
            forged = await conn.fetchval("SELECT sb_agi_attempt_finish(424242, 'u-x', true)")
            # a real attempt, finished "right" without the hash ever being asked for
            attempt = await conn.fetchval("SELECT sb_agi_attempt_begin('u-y', 'PJSIP/x-1', "
                                          "$1, $2, $3)", LINE, AGENCY, OFFICER)
            unchecked = await conn.fetchval("SELECT sb_agi_attempt_finish($1, 'u-y', true)",
                                            attempt)
            # another call's attempt
            attempt = await conn.fetchval("SELECT sb_agi_attempt_begin('u-z', 'PJSIP/x-2', "
                                          "$1, $2, $3)", LINE, AGENCY, OFFICER)
            await conn.fetchval("SELECT sb_agi_attempt_hash($1, 'u-z')", attempt)
            other_call = await conn.fetchval("SELECT sb_agi_attempt_finish($1, 'u-other', "
                                             "true)", attempt)
            lookup = await conn.fetchrow("SELECT * FROM sb_agi_case_lookup('u-x', 'PJSIP/x-1',"
                                         " $1, $2)", LINE, CASE_FOUND)
        finally:
            await conn.close()
        rows = await agi.fetch("SELECT uniqueid, result FROM audit_log WHERE action = "
                               "'verify' ORDER BY at")
        return forged, unchecked, other_call, lookup, [tuple(r) for r in rows]
    forged, unchecked, other_call, lookup, rows = run_agi(scenario)
    assert (forged, unchecked, other_call) == ("failed", "failed", "failed")
    assert lookup["outcome"] == "refused" and lookup["case_ref"] is None
    assert ("u-x", "refused") in rows and ("u-other", "refused") in rows
    assert not [r for r in rows if r[1] in ("full", "line-only")]


def test_a_hash_harvested_in_a_rolled_back_transaction_is_still_counted(
        run_agi: RunAgi, db_url: str) -> None:
    """Before: sb_agi_verify_begin in a transaction that was rolled back handed
    out PIN hashes with no audit row and no counted attempt (9 harvested)."""
    async def scenario(agi: Agi) -> Any:
        conn = await as_agi(db_url)
        got = []
        try:
            for _ in range(3):  # begin and hash in one transaction, rolled back
                async with conn.transaction():
                    attempt = await conn.fetchval(
                        "SELECT sb_agi_attempt_begin('u-h', 'PJSIP/x-1', $1, $2, $3)",
                        LINE, AGENCY, OFFICER)
                    got.append(await conn.fetchval("SELECT sb_agi_attempt_hash($1, 'u-h')",
                                                   attempt))
                    raise_rollback = conn.execute("SELECT 1/0")
                    with pytest.raises(asyncpg.DivisionByZeroError):
                        await raise_rollback
            for _ in range(3):  # begin committed, the hash asked in a rolled-back one
                attempt = await conn.fetchval(
                    "SELECT sb_agi_attempt_begin('u-h', 'PJSIP/x-1', $1, $2, $3)",
                    LINE, AGENCY, OFFICER)
                tx = conn.transaction()
                await tx.start()
                got.append(await conn.fetchval("SELECT sb_agi_attempt_hash($1, 'u-h')",
                                               attempt))
                await tx.rollback()
        finally:
            await conn.close()
        state = await agi.fetch("SELECT failed_count FROM officer WHERE number = $1",
                                OFFICER)
        attempts = await agi.fetch("SELECT count(*) AS n FROM verify_attempt")
        return got, state[0]["failed_count"], attempts[0]["n"]
    got, failed_count, attempts = run_agi(scenario)
    assert got[:3] == [None, None, None]  # never to the transaction that began it
    assert all(h and h.startswith("$argon2id$") for h in got[3:])
    assert failed_count == 3 and attempts == 3  # every hash that left is counted


def test_policy_is_the_databases_and_the_lock_holds_against_a_claimed_right_pin(
        run_agi: RunAgi, db_url: str) -> None:
    """Before: p_max_failures => 100 allowed 20 wrong PINs without a lock, and the
    policy came from the service's settings."""
    async def scenario(agi: Agi) -> Any:
        conn = await as_agi(db_url)
        outcomes = []
        try:
            for n in range(20):
                attempt = await conn.fetchval(
                    "SELECT sb_agi_attempt_begin($1, 'PJSIP/x-1', $2, $3, $4)",
                    f"u-p{n}", f"+16155550{n + 110:03d}", AGENCY, OFFICER)
                await conn.fetchval("SELECT sb_agi_attempt_hash($1, $2)", attempt, f"u-p{n}")
                outcomes.append(await conn.fetchval(
                    "SELECT sb_agi_attempt_finish($1, $2, false)", attempt, f"u-p{n}"))
            # locked now: the service says "right PIN", the database says locked
            attempt = await conn.fetchval("SELECT sb_agi_attempt_begin('u-r', 'PJSIP/x-1', "
                                          "$1, $2, $3)", LINE, AGENCY, OFFICER)
            no_hash = await conn.fetchval("SELECT sb_agi_attempt_hash($1, 'u-r')", attempt)
            claimed = await conn.fetchval("SELECT sb_agi_attempt_finish($1, 'u-r', true)",
                                          attempt)
            refused = await refused_statements(conn)
        finally:
            await conn.close()
        return outcomes, no_hash, claimed, refused
    outcomes, no_hash, claimed, refused = run_agi(scenario)
    assert outcomes[:4] == ["failed"] * 4 and set(outcomes[4:]) == {"locked"}
    assert no_hash is None and claimed == "locked"
    assert refused == ["UPDATE verify_policy SET max_failures = 100",
                       "SELECT * FROM verify_attempt"]


async def refused_statements(conn: asyncpg.Connection) -> list[str]:
    return await refused(conn, ["UPDATE verify_policy SET max_failures = 100",
                                "SELECT * FROM verify_attempt"])


def test_no_pin_hash_or_case_number_in_the_logs(
        run_agi: RunAgi, json_log_lines: Callable[[], list[dict[str, Any]]]) -> None:
    run_agi(traffic)
    lines = json_log_lines()
    text = repr(lines)
    events = {x["event"] for x in lines}
    assert {"verify_attempt", "lookup_done", "agi_call_done"} <= events
    assert PIN not in text and "111999" not in text and "$argon2" not in text
    assert CASE_FOUND not in text and CASE_MISSING not in text
    call_lines = [x for x in lines if x.get("script")]
    assert call_lines and all(x["uniqueid"].startswith("pbx-t-") for x in call_lines)


def test_database_down_fails_closed_with_a_clear_log(
        run_agi: RunAgi, pg_cluster: LocalCluster, db_url: str,
        json_log_lines: Callable[[], list[dict[str, Any]]]) -> None:
    name = db_url.rsplit("/", 1)[1]

    async def scenario(agi: Agi) -> Any:
        conn = await asyncpg.connect(pg_cluster.superuser_url())
        try:  # the database refuses connections and drops the pool's
            await conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = $1", name)
            verify = await agi.call("verify", RIGHT)
            lookup = await agi.call("lookup", [CASE_FOUND], variables={"SB_VERIFIED": "full"})
            await conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
            again = await agi.call("verify", RIGHT)  # and it recovers by itself
        finally:
            await conn.close()
        return verify, lookup, again
    verify, lookup, again = run_agi(scenario)
    assert verify.variables == {"SB_VERIFIED": "error"}
    assert lookup.variables == {"SB_LOOKUP": "error", "SB_CASE_PRIORITY": "normal"}
    assert again.variables["SB_VERIFIED"] == "full"
    lines = json_log_lines()
    events = [x for x in lines if x["event"].endswith("database_unavailable")]
    assert {x["event"] for x in events} == {"verify_database_unavailable",
                                            "lookup_database_unavailable"}
    assert all(x["level"] == "error" and x["fail_closed"] == "error" for x in events)


def test_a_handler_that_raises_fails_closed_and_the_server_goes_on(run_agi: RunAgi) -> None:
    async def scenario(agi: Agi) -> Any:
        server = agi.service.server
        assert server is not None
        original = server.registry["verify"]

        async def boom(channel: Any) -> None:
            raise RuntimeError(f"PIN {PIN} went wrong")
        server.registry["verify"] = type(original)(boom, original.on_error)
        broken = await agi.call("verify", RIGHT)
        server.registry["verify"] = original
        fine = await agi.call("verify", RIGHT)
        return broken, fine, server.failed
    broken, fine, failed = run_agi(scenario)
    assert broken.variables == {"SB_VERIFIED": "error"}
    assert fine.variables["SB_VERIFIED"] == "full" and failed == 1


def test_two_hundred_concurrent_verified_lookups(run_agi: RunAgi) -> None:
    """Correctness under 200 calls at once (the chains, every result); how long
    they wait for a connection is the benchmark's business, so the wait for a
    free connection is not what this test measures (SB_AGI_POOL_WAIT_S)."""
    async def one(agi: Agi, n: int) -> tuple[str, str]:
        uid = uniqueid()
        # 50 officers, four calls each at once (a counted attempt per hash handed
        # out: more than five at once on one officer would be refused)
        v = await agi.call("verify", [AGENCY, str(2000 + n % 50), PIN], uid=uid)
        lk = await agi.call("lookup", [CASE_FOUND], uid=uid, variables=v.variables)
        return v.variables["SB_VERIFIED"], lk.variables["SB_LOOKUP"]

    async def scenario(agi: Agi) -> Any:
        conn = await asyncpg.connect(agi.db_url)
        try:
            hasher = make_hasher(agi_settings())
            for k in range(50):
                await ops.officer_add(conn, AGENCY, str(2000 + k), f"Officer {2000 + k}")
                await ops.officer_set_pin(conn, hasher, AGENCY, str(2000 + k), PIN)
        finally:
            await conn.close()
        results = await asyncio.gather(*(one(agi, n) for n in range(200)))
        report = await chain(agi.db_url)
        spread = await agi.fetch("SELECT count(DISTINCT chain) AS n, count(DISTINCT "
                                 "(uniqueid, chain)) AS pairs, count(DISTINCT uniqueid) AS "
                                 "calls FROM audit_log WHERE uniqueid IS NOT NULL")
        return results, report, spread[0]
    results, report, spread = run_agi(scenario, SB_AGI_POOL_WAIT_S="60")
    # the calls spread over the 16 chains, each call's rows in one chain
    assert spread["n"] == 16 and spread["pairs"] == spread["calls"] == 200
    assert set(results) == {("full", "found")} and len(results) == 200
    # seed, 50 officers, then a caller-ID check, a verify and a lookup per call
    assert report.ok and report.rows == 7 + 100 + 600
