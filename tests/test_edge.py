"""The SIP edge's engines, without Asterisk (the live tier has them with it):
the nftables ruleset `switchboard edge install` renders, loaded into the real
kernel and tried with real packets; fail2ban with the shipped filter and
action, fed Asterisk 22's own security log lines (tests/fixtures/asterisk/
security/, recorded on a real Asterisk 22.10.1), banning through the table and
recording in PostgreSQL; the alert rules with promtool.

Needs root and Debian's nftables, fail2ban and prometheus (promtool), which
`make test` installs; each test says in one line why it is skipped without."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest

from switchboard.admin import edge as admin_edge
from switchboard.dialplan_tools.edge import EDGE_DIR, edge_of_site
from tests.helpers import (
    CLI,
    EDGE_CARRIER,
    EDGE_PHONE,
    db_env,
    delete_table,
    fail2ban,
    make_site,
)

FIXTURE = Path(__file__).parent / "fixtures" / "asterisk" / "security" / "security.log"
CARRIER, PHONE = EDGE_CARRIER, EDGE_PHONE
STRANGER, OTHER = "127.0.0.9", "127.0.0.10"


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"SIP edge: {', '.join(missing)} not installed (make test installs "
                    "nftables, fail2ban and prometheus)")
    if "nft" in tools and os.geteuid() != 0:
        pytest.skip("SIP edge: nftables needs root")


def reaches(source: str, port: int, *, tcp: bool = False) -> bool:
    """Does a packet from ``source`` reach 127.0.0.1:``port``?"""
    if tcp:
        with socket.socket() as c:
            c.bind((source, 0))
            c.settimeout(0.5)
            try:
                c.connect(("127.0.0.1", port))
                return True
            except OSError:
                return False
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        srv.bind(("127.0.0.1", port))
        srv.settimeout(0.3)
        c.bind((source, 0))
        c.sendto(b"OPTIONS sip:probe SIP/2.0\r\n\r\n", ("127.0.0.1", port))
        try:
            srv.recvfrom(100)
            return True
        except TimeoutError:
            return False


def test_the_site_example_renders_a_ruleset_nftables_accepts(tmp_path: Path) -> None:
    need("nft")
    out = subprocess.run([str(CLI), "edge", "show", "nft", "--site",
                          str(EDGE_DIR.parent / "site.example")], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert "elements = { 192.0.2.10/32 }" in out.stdout  # the carrier, from site/trunk.conf
    ruleset = tmp_path / "example.nft"
    ruleset.write_text(out.stdout.replace("inet switchboard", f"inet sbcheck{os.getpid()}"))
    check = subprocess.run(["nft", "-c", "-f", str(ruleset)], capture_output=True, text=True,
                           check=False)
    assert check.returncode == 0, check.stderr


def test_the_firewall_admits_the_carrier_and_the_named_phone_only(tmp_path: Path,
                                                                  db_url: str) -> None:
    """`switchboard edge install` loads the table; packets from the carrier, the
    legacy phone and strangers go where the site says, and a ban (an element
    with a timeout, as fail2ban's action adds it) stops an address, then runs
    out by itself."""
    need("nft")
    site, ports = make_site(tmp_path)
    edge, found = edge_of_site(site)
    assert edge is not None and not found, found
    env = {**os.environ, **db_env(db_url), "SB_STATE_DIR": str(tmp_path / "state")}
    try:
        out = subprocess.run([str(CLI), "edge", "install", "--site", str(site),
                              "--fail2ban-dir", str(tmp_path / "f2b"),
                              "--nft-file", str(tmp_path / "edge.nft"),
                              "--security-log", str(tmp_path / "security.log")],
                             capture_output=True, text=True, timeout=60, env=env, check=False)
        assert out.returncode == 0, out.stderr
        assert f"loaded nftables table inet {edge.nft_table}" in out.stdout
        assert (tmp_path / "f2b" / "filter.d" / "switchboard-asterisk.conf").is_file()
        assert "maxretry = 3" in (tmp_path / "f2b" / "jail.d" / "switchboard.local").read_text()
        # the carrier's port: the carrier only
        assert reaches(CARRIER, ports["carrier"])
        assert not reaches(STRANGER, ports["carrier"])
        assert not reaches(PHONE, ports["carrier"])
        # the legacy phones' port: the named phone at its own address only
        assert reaches(PHONE, ports["clear"])
        assert not reaches(STRANGER, ports["clear"])
        assert not reaches(CARRIER, ports["clear"])
        # the phones' TLS port: from anywhere (phones_from = any)
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", ports["tls"]))
            listener.listen()
            assert reaches(STRANGER, ports["tls"], tcp=True)
            # banned: nothing of it reaches any SIP port, until its time runs out
            subprocess.run(["nft", "add", "element", "inet", edge.nft_table, "banned4",
                            f"{{ {STRANGER} timeout 2s }}"], check=True)
            assert not reaches(STRANGER, ports["tls"], tcp=True)
            assert reaches(OTHER, ports["tls"], tcp=True)
            assert [a for a, _ in admin_edge.nft_bans(edge.nft_table)] == [STRANGER]
            time.sleep(2.5)
            assert reaches(STRANGER, ports["tls"], tcp=True)
        # installed again (a change of the site): replaced whole, still right
        out = subprocess.run([str(CLI), "edge", "install", "--site", str(site),
                              "--fail2ban-dir", str(tmp_path / "f2b"),
                              "--nft-file", str(tmp_path / "edge.nft")],
                             capture_output=True, text=True, timeout=60, env=env, check=False)
        assert out.returncode == 0, out.stderr
        assert reaches(CARRIER, ports["carrier"]) and not reaches(STRANGER, ports["carrier"])
    finally:
        delete_table(edge.nft_table)


def recorded_failures(address: str, n: int) -> list[str]:
    """``n`` failure lines of the recorded security log, stamped now, from
    ``address`` (Asterisk's own words, only the time and the address changed)."""
    lines = [ln for ln in FIXTURE.read_text().splitlines()
             if 'SecurityEvent="ChallengeResponseFailed"' in ln]
    assert lines, "the fixture has no failures"
    now = datetime.now().strftime("%Y-%m-%d %H:%M:%S.000")
    out = []
    for i in range(n):
        line = re.sub(r"^\[[^\]]+\]", f"[{now}]", lines[i % len(lines)])
        out.append(re.sub(r'RemoteAddress="IPV4/(\w+)/[0-9.]+/',
                          rf'RemoteAddress="IPV4/\1/{address}/', line))
    return out


def test_the_filter_counts_asterisks_failures_and_nothing_else() -> None:
    """fail2ban-regex with the shipped filter on the recorded log: every failure
    (wrong password, unknown user, ACL), no success and no challenge."""
    need("fail2ban-regex")
    text = FIXTURE.read_text()
    failures = len(re.findall(r'SecurityEvent="(?:ChallengeResponseFailed|InvalidAccountID|'
                              r'InvalidPassword|FailedACL)"', text))
    assert failures and "SuccessfulAuth" in text and "ChallengeSent" in text
    out = subprocess.run(["fail2ban-regex", str(FIXTURE),
                          str(EDGE_DIR / "fail2ban" / "filter.d" / "switchboard-asterisk.conf")],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    m = re.search(r"Lines: (\d+) lines, (\d+) ignored, (\d+) matched", out.stdout)
    assert m is not None, out.stdout
    assert int(m.group(3)) == failures, out.stdout


def wait_for(what: str, check: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"never: {what}")


async def rows(db_url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(db_url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def test_fail2ban_bans_a_guesser_through_the_table_and_records_it(tmp_path: Path,
                                                                 db_url: str) -> None:
    """Three recorded failures from one address within a minute: fail2ban bans
    it into the product's table (nothing of it reaches a SIP port) and `edge
    record` writes the ban (row, audit); the ban ends on time and so does its
    row.  The carrier's failures never ban it.  An ops unban is recorded as
    such, once."""
    need("nft", "fail2ban-client", "fail2ban-server")
    site, ports = make_site(tmp_path)
    edge, _ = edge_of_site(site)
    assert edge is not None
    env = {**os.environ, **db_env(db_url), "SB_STATE_DIR": str(tmp_path / "state"),
           "SB_LOG_FORMAT": "json"}
    confdir, log = tmp_path / "f2b", tmp_path / "security.log"
    log.write_text("")
    try:
        subprocess.run([str(CLI), "edge", "install", "--site", str(site), "--fail2ban-dir",
                        str(confdir), "--nft-file", str(tmp_path / "edge.nft"),
                        "--security-log", str(log)], check=True, capture_output=True,
                       timeout=60, env=env)
        with fail2ban(confdir, env) as sock, socket.socket() as tls:
            tls.bind(("127.0.0.1", ports["tls"]))
            tls.listen()
            client = ["fail2ban-client", "-s", str(sock)]
            # seconds, not the site's minute, so the test sees the end
            subprocess.run([*client, "set", "switchboard-sip", "bantime", "3"], check=True,
                           capture_output=True, timeout=30)
            with log.open("a") as f:
                f.write("\n".join(recorded_failures(CARRIER, 10)
                                  + recorded_failures(STRANGER, 3)) + "\n")
            wait_for("the stranger banned", lambda: STRANGER in
                     [a for a, _ in admin_edge.nft_bans(edge.nft_table)])
            assert not reaches(STRANGER, ports["tls"], tcp=True)
            assert reaches(OTHER, ports["tls"], tcp=True)
            assert CARRIER not in [a for a, _ in admin_edge.nft_bans(edge.nft_table)]
            wait_for("the ban recorded", lambda: asyncio.run(rows(
                db_url, "SELECT 1 FROM sip_ban WHERE lifted_at IS NULL")))
            ban = asyncio.run(rows(db_url, "SELECT host(address) AS a, jail, failures, "
                                   "until - banned_at AS len FROM sip_ban"))
            assert [(r["a"], r["jail"], r["failures"], r["len"].total_seconds())
                    for r in ban] == [(STRANGER, "switchboard-sip", 3, 3.0)]
            # its time runs out: the firewall lets it in again, the row is closed
            wait_for("the ban lifted", lambda: asyncio.run(rows(
                db_url, "SELECT 1 FROM sip_ban WHERE lifted_by = 'expiry'")), timeout=15)
            assert reaches(STRANGER, ports["tls"], tcp=True)
            # ops lift a ban before its time
            subprocess.run([*client, "set", "switchboard-sip", "bantime", "600"], check=True,
                           capture_output=True, timeout=30)
            with log.open("a") as f:
                f.write("\n".join(recorded_failures(OTHER, 3)) + "\n")
            wait_for("the other banned", lambda: OTHER in
                     [a for a, _ in admin_edge.nft_bans(edge.nft_table)])
            wait_for("its ban recorded", lambda: len(asyncio.run(rows(
                db_url, "SELECT 1 FROM sip_ban"))) == 2)
            out = subprocess.run([str(CLI), "edge", "unban", OTHER, "--socket", str(sock)],
                                 capture_output=True, text=True, timeout=60, env=env,
                                 check=False)
            assert out.returncode == 0, out.stderr
            assert reaches(OTHER, ports["tls"], tcp=True)
            time.sleep(1)  # fail2ban's action records the unban too: nothing doubles
        audit = asyncio.run(rows(db_url, "SELECT actor, action, result, detail FROM audit_log "
                                 "WHERE action LIKE 'sip-%' ORDER BY seq"))
        assert [(r["action"], r["result"]) for r in audit] == [
            ("sip-ban", "banned"), ("sip-unban", "lifted"), ("sip-ban", "banned"),
            ("sip-unban", "lifted")]
        assert audit[0]["detail"].startswith(f"{STRANGER} jail switchboard-sip for 3 s after 3")
        assert audit[3]["detail"] == f"{OTHER} jail switchboard-sip by ops"
    finally:
        delete_table(edge.nft_table)


def test_the_alert_rules_check_and_fire_as_written() -> None:
    need("promtool")
    rules = EDGE_DIR / "prometheus"
    files = sorted(f.name for f in rules.glob("*.rules.yml"))
    assert files == ["switchboard-edge.rules.yml", "switchboard-line.rules.yml",
                     "switchboard-supervisor.rules.yml"]
    for args in (["check", "rules", *files],
                 ["test", "rules", *(f.replace(".rules.", ".tests.") for f in files)]):
        out = subprocess.run(["promtool", *args], cwd=rules, capture_output=True, text=True,
                             timeout=60, check=False)
        assert out.returncode == 0, out.stdout + out.stderr


def exported_metrics() -> set[str]:
    """Every metric name switchboard's services export: the prometheus_client
    collectors in the code (a Counter's series gets ``_total``, a Histogram's
    ``_bucket``, ``_sum``, ``_count``) and the textfile ones (``# TYPE``)."""
    root = Path(admin_edge.__file__).resolve().parents[1]
    names: set[str] = set()
    for src in root.rglob("*.py"):
        text = src.read_text()
        for kind, name in re.findall(r'\b(Gauge|Counter|Histogram)\(\s*"(sb_[a-z_]+)"', text):
            names |= {name} if kind == "Gauge" else (
                {name + "_total"} if kind == "Counter" else
                {name + s for s in ("_bucket", "_sum", "_count")})
        names |= set(re.findall(r"# TYPE (sb_[a-z_]+) ", text))
    return names


def test_the_grafana_dashboard_reads_only_metrics_that_exist(tmp_path: Path) -> None:
    """The dashboard shipped beside the rules: well formed (no panel over
    another, within the 24-column grid), every series it asks for is one a
    service exports, every metric an alert rule reads has a panel, and every
    query is PromQL that promtool accepts."""
    import json
    rules = EDGE_DIR / "prometheus"
    dash = json.loads((rules / "switchboard-dashboard.json").read_text())
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    assert len(panels) >= 15 and len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    cells: set[tuple[int, int]] = set()
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        mine = {(g["y"] + dy, g["x"] + dx) for dy in range(g["h"]) for dx in range(g["w"])}
        assert not mine & cells, f"{p['title']} overlaps another panel"
        cells |= mine
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    assert all(p["targets"] for p in panels)
    used = {m for e in exprs for m in re.findall(r"\bsb_[a-z_]+", e)}
    exported = exported_metrics()
    assert used <= exported, f"not exported by any service: {sorted(used - exported)}"
    alerted = {m for f in rules.glob("*.rules.yml")
               for m in re.findall(r"\bsb_[a-z_]+[a-z]", f.read_text())}
    alerted = {m for m in alerted if m in exported}
    assert alerted <= used, f"alerts with no panel: {sorted(alerted - used)}"
    need("promtool")
    check = tmp_path / "dashboard.rules.yml"
    check.write_text("groups:\n- name: dashboard\n  rules:\n" + "".join(
        f"  - record: dashboard:q{i}\n    expr: {json.dumps(e)}\n" for i, e in enumerate(exprs)))
    out = subprocess.run(["promtool", "check", "rules", str(check)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_doctor_checks_the_edge(tmp_path: Path, db_url: str) -> None:
    """`switchboard doctor` on a node whose firewall is not loaded and whose
    fail2ban does not run says so (FAIL: the carrier's calls prove nothing);
    once both run with the site's values, OK, with the bans in force."""
    need("nft", "fail2ban-client", "fail2ban-server")
    site, _ = make_site(tmp_path)
    edge, _ = edge_of_site(site)
    assert edge is not None
    log = tmp_path / "security.log"
    env = {**os.environ, **db_env(db_url), "SB_STATE_DIR": str(tmp_path / "state"),
           "SB_SITE_DIR": str(site), "SB_SECURITY_LOG": str(log)}

    def edge_lines() -> list[str]:
        out = subprocess.run([str(CLI), "doctor"], capture_output=True, text=True,
                             timeout=120, env=env, check=False)
        return [ln for ln in out.stdout.splitlines() if ln[6:].startswith("edge ")]
    before = edge_lines()
    assert any(ln.startswith("FAIL") and "is not loaded" in ln for ln in before), before
    assert any(ln.startswith("FAIL") and "does not run the jail" in ln for ln in before)
    assert any(ln.startswith("FAIL") and "no security log" in ln for ln in before)
    log.write_text("")
    confdir = tmp_path / "f2b"
    try:
        subprocess.run([str(CLI), "edge", "install", "--site", str(site), "--fail2ban-dir",
                        str(confdir), "--nft-file", str(tmp_path / "edge.nft"),
                        "--security-log", str(log)], check=True, capture_output=True,
                       timeout=60, env=env)
        with fail2ban(confdir, env) as sock:
            env["SB_FAIL2BAN_SOCKET"] = str(sock)
            after = edge_lines()
        assert [ln.split()[0] for ln in after] == ["OK", "OK", "OK"], after
        assert f"admits {CARRIER}/32" in after[0] and "0 address(es) banned" in after[0]
        assert "Currently banned:" in after[1]
    finally:
        delete_table(edge.nft_table)


def test_unban_refuses_an_address_that_is_not_banned(tmp_path: Path, db_url: str) -> None:
    """Ops lifting a ban that fail2ban does not hold (a typo, or fail2ban down):
    a clear error, and nothing recorded as lifted."""
    need("fail2ban-client")
    env = {**os.environ, **db_env(db_url), "SB_STATE_DIR": str(tmp_path / "state")}
    out = subprocess.run([str(CLI), "edge", "unban", "127.0.0.77", "--socket",
                          str(tmp_path / "no.sock")], capture_output=True, text=True,
                         timeout=60, env=env, check=False)
    assert out.returncode == 1
    assert "127.0.0.77 is not banned by fail2ban's jail switchboard-sip" in out.stderr
    bad = subprocess.run([str(CLI), "edge", "unban", "not-an-address"], capture_output=True,
                         text=True, timeout=60, env=env, check=False)
    assert bad.returncode == 1 and "is not an IP address" in bad.stderr
    assert asyncio.run(rows(db_url, "SELECT 1 FROM audit_log WHERE action = 'sip-unban'")) == []
