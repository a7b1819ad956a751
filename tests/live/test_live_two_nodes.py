"""Two Asterisk nodes behind the SIP front (issue 23), live: the session's node
(sb-live, SIP on 127.0.0.1) and a second one (sb-live-b on 127.0.0.11), both
deployed from dialplan/ with site files that name each other, Kamailio's
dispatcher on 127.0.0.12 rendered by ``switchboard front render``, the desk
phones registered on both (as phones with two registrations do), one listener
per node.  Node A is then SIGKILLed mid-burst.

Runs last in the live tier (A is killed, then started again)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from switchboard.ami_listener import queue_log
from switchboard.console.front_cli import render_peers
from switchboard.dialplan_tools.front import kamailio_binary, parse_cluster, write_front
from switchboard.pgcluster import free_port
from tests.helpers import judge_calls
from tests.live import sipp
from tests.live.calls import caller, national
from tests.live.harness import (
    ANSWERING_PHONES,
    CASE_NORMAL,
    REGISTERED,
    RING_MS,
    TALK_MS,
    Live,
    Service,
)
from tests.live.node import CARRIER_IP, FRONT_IP, NODE_B_IP, SYSTEMNAME, LiveNode

NODE_B = "sb-live-b"
AGENTS = [0, 1]


@dataclass
class Pair:
    a: LiveNode
    b: LiveNode
    front_port: int
    listener_b: Service
    phones_b: list[sipp.Sipp]
    kamailio: subprocess.Popen[bytes]

    @property
    def front(self) -> str:
        return f"{FRONT_IP}:{self.front_port}"


def _cluster(a: LiveNode, b: LiveNode, front_port: int) -> str:
    return (f"[front]\nlisten = {FRONT_IP}:{front_port}\ncarrier = {CARRIER_IP}\n"
            "probe_s = 1\nnode_timeout_ms = 800\n\n"
            f"[{SYSTEMNAME}]\nsip = {a.host}:{a.sip_port}\nami = {a.host}:5038\n\n"
            f"[{NODE_B}]\nsip = {b.host}:{b.sip_port}\nami = {b.host}:5038\n")


def _deploy(node: LiveNode, env: dict[str, str], *, first: bool) -> None:
    args = ["dialplan", "deploy", "--confdir", str(node.etc), "--site", str(node.site_src)]
    r = node.switchboard(*args, *(["--first-install"] if first else []), env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def _register(live: Live, node: LiveNode, target: str, tag: str) -> list[sipp.Sipp]:
    procs = []
    for i, p in enumerate(node.clear_phones[:ANSWERING_PHONES]):
        main, ooc = sipp.register_and_answer(p.name, p.password, RING_MS, TALK_MS)
        proc = sipp.Sipp(f"{tag}-{p.name}", live.sipp_dir, p.ip, target, main, ooc)
        proc.start()
        procs.append(proc)
        del i
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        shown = node.rx("pjsip show contacts")
        if all(f"{p.name}/sip:{p.name}@{p.ip}" in shown
               for p in node.clear_phones[:ANSWERING_PHONES]):
            return procs
        time.sleep(0.2)
    raise RuntimeError(f"phones did not register on {node.systemname}: "
                       f"{node.rx('pjsip show contacts')}")


async def _feature(live: Live, node: LiveNode, target: str, phone: int, code: str) -> int:
    p = node.phones[phone]
    proc = sipp.Sipp(f"feature-b-{p.name}-{code.strip('*')}-{time.monotonic_ns()}",
                     live.sipp_dir, p.ip, target, sipp.feature_call(p.name, p.password, code))
    proc.start()
    return await proc.wait(30)


@pytest.fixture(scope="module")
def pair(live: Live) -> Iterator[Pair]:
    if kamailio_binary() is None:
        pytest.skip("two-node scenario skipped: no Kamailio (apt-get install kamailio)")
    a = live.node
    root = a.root.parent
    front_port = free_port()
    b = LiveNode(a.binary, root / "node-b", a.sip_port, a.agi_port, agi_port2=a.agi_port2,
                 clear_port=a.clear_port, tls_port=a.tls_port, host=NODE_B_IP,
                 systemname=NODE_B, entityid="02:00:00:00:00:0b")
    cluster_text = _cluster(a, b, front_port)
    (root / "cluster.conf").write_text(cluster_text)
    cluster, found = parse_cluster(root / "cluster.conf")
    assert cluster is not None and not found, found
    b.cluster, b.peers = cluster_text, render_peers(cluster, NODE_B)
    b.prepare(n_phones=len(a.clear_phones), n_tls_phones=1)
    env_b = {**live.env, "SB_AMI_NODES": f"{NODE_B}@{NODE_B_IP}:5038",
             "SB_AMI_SECRET": b.listener_secret, "SB_QUEUE_LOG": str(b.queue_log),
             "SB_STATE_DIR": str(root / "state-b"), "SB_NODE_LOST_S": "3"}
    listener_b = Service("ami-listener-b", ["ami-listener"], env_b, root / "ami-listener-b.log")
    kam: subprocess.Popen[bytes] | None = None
    phones_b: list[sipp.Sipp] = []
    try:
        _deploy(b, live.env, first=True)
        b.start()
        r = b.switchboard("dialplan", "confirm", "--confdir", str(b.etc), env=live.env)
        assert r.returncode == 0, r.stdout + r.stderr
        # node A learns of B: the same deploy an operator runs (res_pjsip reloaded)
        a.cluster, a.peers = cluster_text, render_peers(cluster, SYSTEMNAME)
        a.write_cluster()
        _deploy(a, live.env, first=False)
        # A's listener says a node is lost after 3 s of silence in this scenario
        live.listener.stop()
        live.listener.env = {**live.env, "SB_NODE_LOST_S": "3"}
        live.start_listener()
        mark = 0
        listener_b.start()
        live.wait_log(listener_b, "ami_logged_in", mark)
        front_dir = root / "front"
        write_front(cluster, front_dir)
        (front_dir / "run").mkdir(exist_ok=True)
        with (root / "kamailio.log").open("ab") as out:
            kam = subprocess.Popen(
                [str(kamailio_binary()), "-f", str(front_dir / "kamailio.cfg"), "-DD", "-E",
                 "-m", "64", "-M", "8", "-Y", str(front_dir / "run")],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        phones_b = _register(live, b, f"{NODE_B_IP}:{b.clear_port}", "phone-b")
        pair = Pair(a, b, front_port, listener_b, phones_b, kam)
        yield pair
    finally:
        for proc in phones_b:
            proc.kill()
        if kam is not None and kam.poll() is None:
            os.killpg(kam.pid, signal.SIGTERM)
            try:
                kam.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(kam.pid, signal.SIGKILL)
                kam.wait(10)
        listener_b.stop()
        b.stop()
        if a.proc is None or a.proc.poll() is not None:
            a.start()


async def _newchannels(live: Live, node: str, numbers: list[str], since: float
                       ) -> dict[str, list[Any]]:
    rows = await live.fetch(
        "SELECT split_part(fields->>'CallerIDNum', ';', 1) AS num, uniqueid, event_time"
        " FROM ami_event WHERE event = 'Newchannel' AND node = $1"
        " AND event_time >= to_timestamp($2) AND fields->>'Channel' LIKE 'PJSIP/carrier-%'",
        node, since - 1)
    wanted = {national(n) for n in numbers}
    out: dict[str, list[Any]] = {}
    for r in rows:
        if r["num"] in wanted:
            out.setdefault(r["num"], []).append(r)
    return out


def _place(live: Live, target: str, callers: list[sipp.Caller], tag: str) -> list[sipp.Sipp]:
    procs = []
    for i, c in enumerate(callers):
        proc = sipp.Sipp(f"{tag}-{i}-{c.callerid}", live.sipp_dir, CARRIER_IP, target,
                         c.scenario())
        proc.start()
        procs.append(proc)
    return procs


def test_the_front_spreads_calls_over_both_nodes(live: Live, pair: Pair) -> None:
    """Eight callers through the front: each node answers about half."""
    since = time.time()
    numbers = [live.unregistered_number() for _ in range(8)]
    procs = _place(live, pair.front, [sipp.Caller(national(n), (), 3000, "6155550100")
                                      for n in numbers], "spread")

    async def wait() -> list[int]:
        return list(await asyncio.gather(*(p.wait(30) for p in procs)))
    asyncio.run(wait())
    time.sleep(1.5)
    on_a = asyncio.run(_newchannels(live, SYSTEMNAME, numbers, since))
    on_b = asyncio.run(_newchannels(live, NODE_B, numbers, since))
    print(f"spread: node A {len(on_a)} calls, node B {len(on_b)} calls of {len(numbers)}")
    assert len(on_a) + len(on_b) == len(numbers)
    assert min(len(on_a), len(on_b)) >= 3, (len(on_a), len(on_b))


def _members(node: LiveNode) -> dict[str, str]:
    out = {}
    for line in node.rx("queue show intake").splitlines():
        m = re.search(r"\((PJSIP/\d+)\)(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _until(what: str, check: Any, timeout_s: float = 10) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout_s, what
        time.sleep(0.1)
    return time.monotonic() - start


def test_agents_on_every_node(live: Live, pair: Pair) -> None:
    """A login, a pause and a logout from the desk phone on one node take effect
    on the other (the listeners apply agent_presence); an agent talking on A is
    in use on B (the nodes share the phones' device states)."""
    a, b = pair.a, pair.b
    b_target = f"{NODE_B_IP}:{b.clear_port}"
    agent = f"PJSIP/{a.clear_phones[2].name}"
    asyncio.run(live.agents([0, 2]))  # *11 on A (and *12 for the others)
    took = _until("the login on A never reached B", lambda: agent in _members(b))
    print(f"login on A applied on B after {took:.2f} s")
    assert asyncio.run(_feature(live, b, b_target, 2, "*21")) == 0  # lunch, on B
    took = _until("the pause on B never reached A",
                  lambda: "paused" in _members(a).get(agent, ""))
    print(f"pause on B applied on A after {took:.2f} s")
    assert "lunch" in _members(a)[agent].lower()
    assert asyncio.run(_feature(live, a, live.phone_target, 2, "*12")) == 0  # log out, on A
    _until("the logout on A never reached B", lambda: agent not in _members(b))
    # agent 2001 takes a call on A: B sees the phone in use and offers it nothing
    talker = f"PJSIP/{a.clear_phones[0].name}"
    since = time.time()
    number = live.unregistered_number()
    procs = _place(live, live.target, [caller(number, "1001", patience_ms=40_000)], "inuse")
    _until("the agent never answered on A", lambda: "(in call)" in _members(a).get(talker, ""),
           40)
    # B's own registration of the phone is idle; the state A published makes it
    # in use there (Asterisk aggregates the nodes' states of one device)
    took = _until("B never saw the phone in use", lambda: "(In use)" in _members(b)
                  .get(talker, ""), 3)
    print(f"on B while talking on A ({took:.2f} s): {talker}{_members(b).get(talker, '')}")
    assert "(Not in use)" not in _members(b).get(talker, "")

    async def wait() -> None:
        await asyncio.gather(*(p.wait(60) for p in procs))
    asyncio.run(wait())
    del since


def test_rolling_deploy_stops_at_the_node_that_refuses(live: Live, pair: Pair) -> None:
    """``dialplan deploy --node A --node B``: A gets the new files and is
    confirmed; B refuses (its site breaks a check) and keeps the old ones; the
    audit row says which is which.  Fixed, the rollout completes; ``rollback
    --node A --node B`` puts the previous files back on both."""
    a, b = pair.a, pair.b
    nodes = ["--node", f"{SYSTEMNAME}:{a.etc}:{a.site_src}",
             "--node", f"{NODE_B}:{b.etc}:{b.site_src}"]
    env = {**live.env, "SB_AMI_OPS_USER": "ops", "SB_AMI_OPS_SECRET": a.ami_secret}
    marker = "; rolled out\n"
    for n in (a, b):
        (n.site_src / "dids.conf").write_text((n.site_src / "dids.conf").read_text() + marker)
    globals_b = (b.site_src / "globals.conf").read_text()
    (b.site_src / "globals.conf").write_text(globals_b.replace(
        "CARRIER_UNPROVEN=unattested", "CARRIER_UNPROVEN=maybe"))
    r = a.switchboard("dialplan", "deploy", *nodes, env=env)
    print(r.stdout[-1500:], r.stderr[-500:])
    assert r.returncode == 1
    assert (f"deploy: new files: {SYSTEMNAME}; refused: {NODE_B}; old files: {NODE_B}"
            in r.stdout)
    assert marker in (a.etc / "site" / "dids.conf").read_text()
    assert marker not in (b.etc / "site" / "dids.conf").read_text()
    audit = asyncio.run(live.fetch("SELECT result, detail FROM audit_log WHERE action ="
                                   " 'dialplan-rollout' ORDER BY at DESC LIMIT 1"))
    assert audit[0]["result"] == "stopped" and f"refused: {NODE_B}" in audit[0]["detail"]
    (b.site_src / "globals.conf").write_text(globals_b)
    r = a.switchboard("dialplan", "deploy", *nodes, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"new files: {SYSTEMNAME},{NODE_B}; refused: -; old files: -" in r.stdout
    assert marker in (b.etc / "site" / "dids.conf").read_text()
    r = a.switchboard("dialplan", "rollback", *nodes, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    for n in (a, b):
        assert marker not in (n.etc / "site" / "dids.conf").read_text()
        (n.site_src / "dids.conf").write_text(
            (n.site_src / "dids.conf").read_text().replace(marker, ""))
    # both nodes still take calls through the front
    assert "sb-inbound" in b.rx("dialplan show sb-inbound")


def test_a_node_killed_mid_burst(live: Live, pair: Pair) -> None:
    """SIGKILL of node A while its calls wait and talk and new ones arrive:
    every new call is answered by node B (the time from the kill to the first
    one is measured), agents go on taking calls on B, A's calls end as cut
    with a reason naming A, a caller A had verified in full gets a callback
    request, the wall board's figures say A is down, and every call on B
    equals B's queue_log."""
    a, b = pair.a, pair.b
    asyncio.run(live.agents(AGENTS))  # on A; the listeners apply them on B
    _until("B never got A's agents", lambda: all(
        f"PJSIP/{b.clear_phones[i].name}" in _members(b) for i in AGENTS))
    since = time.time()
    # verified in full (the agency's registered line), straight to node A
    first = [REGISTERED[40 + i] for i in range(4)]
    on_a: list[sipp.Sipp] = []
    for i, n in enumerate(first):
        on_a += _place(live, live.target, [caller(n, "1001", case=CASE_NORMAL,
                                                  patience_ms=60_000)], f"kill-a-{i}")
        time.sleep(0.7)
    # killed once two of them are in the queue (waiting, or talking to an agent)
    deadline = time.monotonic() + 40
    while len(asyncio.run(live.fetch(
            "SELECT 1 FROM queue_call WHERE node = $1 AND entered_at >= to_timestamp($2)",
            SYSTEMNAME, since))) < 2:
        assert time.monotonic() < deadline, "A's callers never reached the queue"
        time.sleep(0.2)
    time.sleep(1.0)
    killed = time.time()
    assert a.proc is not None
    os.killpg(a.proc.pid, signal.SIGKILL)
    a.proc.wait(10)
    # new calls through the front, one every 0.3 s, each its own number
    later = [live.unregistered_number() for _ in range(6)]
    procs: list[sipp.Sipp] = []
    for i, n in enumerate(later):
        procs += _place(live, pair.front, [caller(n, "1002", patience_ms=40_000)], f"after-{i}")
        time.sleep(0.3)

    async def wait() -> None:
        await asyncio.gather(*(p.wait(90) for p in procs + on_a))
    asyncio.run(wait())
    # every new call reached B (none stayed with the dead node)
    new_b = asyncio.run(_newchannels(live, NODE_B, later, killed))
    assert set(new_b) == {national(n) for n in later}, new_b
    ups = asyncio.run(live.fetch(
        "SELECT min(event_time) AS t FROM ami_event WHERE node = $1 AND event = 'UserEvent'"
        " AND fields->>'UserEvent' = 'SBStep' AND fields->>'Step' = 'answered'"
        " AND uniqueid = ANY($2::text[])",
        NODE_B, [r["uniqueid"] for rows in new_b.values() for r in rows]))
    first_answer_s = ups[0]["t"].timestamp() - killed
    print(f"failover: first new call answered by node B {first_answer_s:.2f} s after the kill")
    assert 0 < first_answer_s < 5
    # agents took calls on B without logging in again
    answered_b = asyncio.run(live.fetch(
        "SELECT count(*) AS n FROM queue_call WHERE node = $1 AND answered_at IS NOT NULL"
        " AND entered_at >= to_timestamp($2)", NODE_B, killed))
    assert answered_b[0]["n"] >= 1
    # A's calls: cut, the reason names A; the callers A verified in full get a
    # callback request to their agency's registered line
    deadline = time.monotonic() + 20
    while True:
        cut = asyncio.run(live.fetch(
            "SELECT uniqueid, outcome, complete_reason FROM queue_call WHERE node = $1"
            " AND entered_at >= to_timestamp($2)", SYSTEMNAME, since))
        if (cut and all(r["outcome"] == "cut" for r in cut)) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert cut and all(r["outcome"] == "cut" and r["complete_reason"] == f"node {SYSTEMNAME}"
                       " lost" for r in cut), cut
    requests = asyncio.run(live.fetch(
        "SELECT ani, origin FROM callback_request WHERE uniqueid = ANY($1::text[])",
        [r["uniqueid"] for r in cut]))
    assert requests and {r["origin"] for r in requests} == {"node-lost"}
    assert {r["ani"] for r in requests} <= set(first)
    nodes = {r["node"]: r for r in asyncio.run(live.fetch("SELECT * FROM sb_node_figures()"))}
    assert nodes[SYSTEMNAME]["state"] == "lost" and nodes[NODE_B]["state"] == "up"
    assert nodes[SYSTEMNAME]["agents"] == 0 and nodes[NODE_B]["agents"] >= len(AGENTS)
    # every call on B equals B's queue_log
    time.sleep(2)
    logged = {k: c for k, c in queue_log.fold(queue_log.read(b.queue_log, int(since) - 1,
                                                              2**40)).items()
              if c.entered_at is not None}
    rows = asyncio.run(live.fetch("SELECT * FROM queue_call WHERE node = $1"
                                  " AND entered_at >= to_timestamp($2)", NODE_B, since))
    right, problems = judge_calls(logged, {(r["uniqueid"], r["queue"]): dict(r)
                                           for r in rows})
    assert not problems, problems
    assert right >= 1
    # A comes back: its listener says it is up again
    a.start()
    deadline = time.monotonic() + 30
    while asyncio.run(live.fetch("SELECT state FROM node_status WHERE node = $1",
                                 SYSTEMNAME))[0]["state"] != "up":
        assert time.monotonic() < deadline, "node A never shown up again"
        time.sleep(0.5)
    Path(live.sipp_dir / "failover.txt").write_text(f"{first_answer_s:.3f}\n")
