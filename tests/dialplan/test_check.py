"""``switchboard dialplan check``: the project's own configuration passes, and
each deliberately broken copy fails with the expected file:line message."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from switchboard.dialplan_tools import dialcheck
from tests.helpers import CLI

# name, file (relative to dialplan/), text to replace (None: append), new text,
# expected code, expected words in the message, expected file in the finding
BROKEN: list[tuple[str, str, str | None, str, str, str, str]] = [
    ("syntax error", "extensions.conf", None, "this line is garbage\n",
     "E_CONF_BAD_LINE", "expected variable = value", "extensions.conf"),
    ("unbalanced ${", "extensions.conf", "${FILTER(0-9,${EXTEN})}", "${FILTER(0-9,${EXTEN})",
     "W_APP_BALANCE", "unbalanced", "extensions.conf"),
    ("unbalanced $[", "extensions.conf", '$["${DB(switchboard/emergency)}" = "on"]',
     '$["${DB(switchboard/emergency)}" = "on"', "E_APP_PARSE_ERROR", "parse error",
     "extensions.conf"),
    ("unknown application", "extensions.conf", "Playback(hello-world)",
     "PlayBak(hello-world)", "SB-APP", "PlayBak does not exist in Asterisk 22",
     "extensions.conf"),
    ("Macro was removed", "extensions.conf", " same => n,Playback(hello-world)",
     " same => n,Macro(greeting)\n same => n,Playback(hello-world)", "SB-APP",
     "removed: use Gosub", "extensions.conf"),
    ("unknown function", "extensions.conf", "${FILTER(0-9,${EXTEN})}",
     "${FILTRE(0-9,${EXTEN})}", "SB-FUNC", "FILTRE does not exist", "extensions.conf"),
    ("Goto to a missing context", "site.example/dids.conf", "Goto(sb-inbound,s,1)",
     "Goto(sb-inbund,s,1)", "SB-TARGET", "context 'sb-inbund' does not exist",
     "site/dids.conf"),
    ("GotoIf to a missing label", "extensions.conf", "?emergency)", "?emergancy)",
     "SB-TARGET", "label 'emergancy' does not exist", "extensions.conf"),
    ("Gosub to a missing extension", "extensions.conf", "Gosub(sb-agi-verify,s,1)",
     "Gosub(sb-agi-verify,start,1)", "SB-TARGET", "extension 'start' does not exist",
     "extensions.conf"),
    ("undefined queue", "extensions.conf", "Queue(overflow,", "Queue(overfow,", "SB-QUEUE",
     "queue 'overfow' is not defined", "extensions.conf"),
    ("AGI with no handler", "extensions.conf", "Gosub(sb-agi,s,1(verify,SB_VERIFIED))",
     "Gosub(sb-agi,s,1(verfy,SB_VERIFIED))", "SB-AGI", "no AGI handler 'verfy'",
     "extensions.conf"),
    ("AGI with no handler, called directly", "extensions.conf",
     "exten => *30,1,", "exten => *31,1,AGI(agi://${AGI_SERVER}/verfy)\nexten => *30,1,",
     "SB-AGI", "no AGI handler 'verfy'", "extensions.conf"),
    ("SB_ variable unknown to the code", "extensions.conf", "Set(SB_CALLER_ID=error)",
     "Set(SB_VERIFY=error)", "SB-VAR", "SB_VERIFY is not a variable the AGI code knows",
     "extensions.conf"),
    ("SB_ variable set by the code, never read", "extensions.conf",
     "ALL:${SB_CASE_PRIORITY}", "${IVR_X}", "SB-VAR",
     "SB_CASE_PRIORITY is set by the lookup handler but the dialplan never reads it",
     "extensions.conf"),
    ("prompt not in the sounds list", "extensions.conf", "Playback(hello-world)",
     "Playback(helo-world)", "SB-PROMPT", "prompt 'helo-world'", "extensions.conf"),
    ("endpoint not in pjsip.conf", "extensions.conf", "exten => _X.,1,Playback(feature",
     "exten => *99,1,Dial(PJSIP/2009)\nexten => _X.,1,Playback(feature", "SB-ENDPOINT",
     "PJSIP/2009 is not defined", "extensions.conf"),
    ("AMI not on loopback", "manager.conf", "bindaddr = 127.0.0.1", "bindaddr = 0.0.0.0",
     "SB-AMI", "only loopback", "manager.conf"),
    ("AMI without bindaddr", "manager.conf", "bindaddr = 127.0.0.1\n", "", "SB-AMI",
     "without bindaddr", "manager.conf"),
    ("chan_sip is gone in Asterisk 22", "modules.conf", "load = chan_pjsip.so",
     "load = chan_pjsip.so\nload = chan_sip.so", "SB-MODULE",
     "chan_sip.so is not a module of Asterisk 22.10.1", "modules.conf"),
    ("a module the dialplan needs is not loaded", "modules.conf", "load = app_queue.so\n",
     "", "SB-MODULE", "needs app_queue.so", "modules.conf"),
    ("secret inline in pjsip.conf", "pjsip.conf", "[sb-phone-auth](!)\n",
     "[sb-phone-auth](!)\npassword = hunter22\n", "SB-SECRET", "password written inline",
     "pjsip.conf"),
    ("strategy in the template and in the queue: the first wins", "queues.conf",
     "[sb-queue](!)\n", "[sb-queue](!)\nstrategy = rrmemory\n", "SB-ONCE",
     "strategy of [priority] is set twice: Asterisk uses the first, 'rrmemory'",
     "queues.conf"),
    ("res_agi without res_speech", "modules.conf", "load = res_speech.so\n", "",
     "SB-MODULE", "res_agi.so requires res_speech.so", "modules.conf"),
    ("chan_pjsip without res_pjsip_pubsub", "modules.conf", "load = res_pjsip_pubsub.so\n",
     "", "SB-MODULE", "chan_pjsip.so requires res_pjsip_pubsub.so", "modules.conf"),
    ("phones register, no registrar", "modules.conf", "load = res_pjsip_registrar.so\n", "",
     "SB-MODULE", "needs res_pjsip_registrar.so", "modules.conf"),
    ("Cdr events without cdr_manager", "modules.conf", "load = cdr_manager.so\n", "",
     "SB-MODULE", "the AMI listener (it keeps the Cdr event) needs cdr_manager.so",
     "modules.conf"),
    ("a template in asterisk.conf", "asterisk.conf", "[options]\n",
     "[directories](!)\nastetcdir => /etc/asterisk\n\n[options]\n", "SB-ASTCONF",
     "[directories] is a template: Asterisk ignores it", "asterisk.conf"),
    ("a relative include in asterisk.conf", "asterisk.conf", '#include "site/node.conf"',
     '#include "node.conf"', "SB-ASTCONF",
     "would be looked up in the folder Asterisk was built with", "asterisk.conf"),
    ("an include that does not resolve", "extensions.conf", '#include "site/dids.conf"',
     '#include "site/did.conf"', "SB-CONF",
     '#include "site/did.conf": no such file; Asterisk would ignore all of extensions.conf',
     "extensions.conf"),
    ("a site file nothing includes", "site.example/did.conf", None,
     "exten => 6155550100,1,Goto(sb-inbound,s,1)\n", "SB-CONF",
     "no file #includes site/did.conf", "site/did.conf"),
    # the SIP edge (issue 22)
    ("a phone in clear not named by the site", "site.example/phones.conf",
     "[2002](sb-phone,loc-hq-3)", "[2002](sb-phone-clear,loc-hq-3)", "SB-TLS",
     "phone 2002 would send its SIP or media in clear", "site/phones.conf"),
    ("a phone without SRTP", "pjsip.conf", "media_encryption = sdes\n",
     "media_encryption = no\n", "SB-TLS", "phone 2001 would send its SIP or media in clear",
     "site/phones.conf"),
    ("a legacy phone named that uses TLS", "site.example/edge.conf", "clear_phones =",
     "clear_phones = 2001", "SB-TLS", "clear_phones names 2001, which uses TLS and SRTP",
     "site/edge.conf"),
    ("a TLS transport without its key", "site.example/transports.conf",
     "priv_key_file = /etc/asterisk/secrets/tls/sip.key\n", "", "SB-TLS",
     "transport-tls is tls without priv_key_file", "site/transports.conf"),
    ("SRTP without res_srtp", "modules.conf", "load = res_srtp.so\n", "", "SB-TLS",
     "does not load res_srtp.so", "modules.conf"),
    ("the carrier matched by its From user", "pjsip.conf", "identify_by = ip\n",
     "identify_by = username,ip\n", "SB-IDENTIFY",
     "endpoint carrier has no authentication and is matched by username, ip",
     "pjsip.conf"),
    ("the carrier matched by the default", "pjsip.conf", "identify_by = ip\n", "",
     "SB-IDENTIFY", "endpoint carrier has no authentication and is matched by username, ip",
     "pjsip.conf"),
    ("CARRIER_PORT is not the carrier's port", "site.example/globals.conf",
     "CARRIER_PORT=5060", "CARRIER_PORT=5070", "SB-EDGE",
     "CARRIER_PORT (site/globals.conf) must be transport-carrier's port 5060",
     "site/globals.conf"),
    ("two transports on one port", "site.example/transports.conf", "bind = 192.0.2.20:5061",
     "bind = 192.0.2.20:5060", "SB-EDGE", "share port 5060", "site/transports.conf"),
    ("a TLS carrier link on UDP", "site.example/edge.conf", "carrier_link = firewall",
     "carrier_link = tls", "SB-EDGE", "carrier_link = tls but transport-carrier is udp",
     "site/transports.conf"),
    ("ban thresholds out of bounds", "site.example/edge.conf", "ban_after = 5",
     "ban_after = 1", "SB-EDGE", "ban_after = '1': a whole number from 2 to 50",
     "site/edge.conf"),
    ("every answer names Asterisk and its version", "pjsip.conf", "user_agent = switchboard",
     "user_agent = Asterisk PBX 22.10.1", "SB-EDGE", "tells scanners what to attack",
     "pjsip.conf"),
    ("every challenge names Asterisk", "pjsip.conf", "default_realm = switchboard\n", "",
     "SB-EDGE", "no default_realm in [global]", "pjsip.conf"),
    ("a phone without a 911 location", "site.example/phones.conf", "[2002](sb-phone,loc-hq-3)",
     "[2002](sb-phone)", "SB-E911", "phone 2002 has no 911 location", "site/phones.conf"),
    ("an emergency caller ID that is not E.164", "site.example/globals.conf",
     "E911_ELIN=+16155550190", "E911_ELIN=911", "SB-E911", "E911_ELIN (site/globals.conf) "
     "must be the site's emergency caller ID in E.164", "site/globals.conf"),
    ("AMI secret inline", "site.example/manager-users.conf",
     '#include "/etc/asterisk/secrets/ami-ops.conf"', "secret = opspass", "SB-SECRET",
     "secret written inline", "site/manager-users.conf"),
]


# what the line a finding names must hold (codes whose finding is about a whole
# file or a missing use are not pinned to a line of text)
MARKERS = {"SB-ONCE": "strategy", "SB-APP": "(", "SB-FUNC": "FILTRE", "SB-TARGET": "Go",
           "SB-QUEUE": "overfow", "SB-AGI": "verfy", "SB-PROMPT": "helo-world",
           "SB-ENDPOINT": "PJSIP/2009", "SB-SECRET": "=", "E_CONF_BAD_LINE": "garbage"}


def broken_copy(tmp: Path, file: str, old: str | None, new: str) -> Path:
    copy = tmp / "dialplan"
    shutil.copytree(dialcheck.DIALPLAN_DIR, copy)
    path = copy / file
    text = path.read_text() if path.exists() else ""
    if old is None:
        text += new
    elif old.startswith("ALL:"):
        assert old[4:] in text, f"{old!r} not in {file}"
        text = text.replace(old[4:], new)
    else:
        assert old in text, f"{old!r} not in {file}"
        text = text.replace(old, new, 1)
    path.write_text(text)
    return copy


def test_the_projects_own_dialplan_passes() -> None:
    assert dialcheck.check() == []


@pytest.mark.parametrize(("file", "old", "new", "code", "words", "where"),
                         [t[1:] for t in BROKEN], ids=[t[0] for t in BROKEN])
def test_each_broken_copy_fails_with_its_message(tmp_path: Path, file: str, old: str | None,
                                                 new: str, code: str, words: str,
                                                 where: str) -> None:
    copy = broken_copy(tmp_path, file, old, new)
    findings = dialcheck.check(copy)
    hits = [f for f in findings if f.code == code and words in f.message]
    assert hits, "\n".join(map(str, findings))
    assert all(f.file == where and f.line > 0 for f in hits)
    # and the line named is the one that was broken
    marker = MARKERS.get(code)
    if marker:
        source = copy / where.replace("site/", "site.example/")
        lines = source.read_text().splitlines()
        assert any(marker in lines[f.line - 1] for f in hits), (marker, hits)


def test_cli_prints_file_line_messages_and_exits_1(tmp_path: Path) -> None:
    copy = broken_copy(tmp_path, "extensions.conf", "Queue(overflow,", "Queue(overfow,")
    r = subprocess.run([str(CLI), "dialplan", "check", "--dir", str(copy)],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 1
    assert any(line.startswith("extensions.conf:") and "SB-QUEUE" in line
               for line in r.stdout.splitlines())
    ok = subprocess.run([str(CLI), "dialplan", "check"], capture_output=True, text=True,
                        timeout=120, check=False)
    assert ok.returncode == 0 and "is fine" in ok.stdout


def test_contract_every_agi_target_and_sb_variable_matches_the_code() -> None:
    """Both ways: what the dialplan calls and uses exists in agi/, and every
    handler and every variable a handler sets is used by the dialplan."""
    import re

    from switchboard.agi import contract
    from switchboard.agi.app import make_flow
    from switchboard.agi.handlers import registry
    from tests.agi.conftest import agi_settings

    text = (dialcheck.DIALPLAN_DIR / "extensions.conf").read_text()
    # every AGI step runs the handler its Gosub names, by FastAGI (both servers)
    # and by process AGI
    assert re.findall(r"AGI\((agi://[^/]+/|switchboard-agi,)([^)]*)\)", text) == [
        ("agi://${AGI_SERVER}/", "${ARG1}"), ("agi://${AGI_SERVER2}/", "${ARG1}"),
        ("switchboard-agi,", "${ARG1}")]
    calls = dict(re.findall(r"Gosub\(sb-agi,s,1\(([a-z-]+),(SB_[A-Z0-9_]+)\)\)", text))
    handlers = set(registry(None, make_flow(agi_settings())))  # type: ignore[arg-type]
    assert set(calls) == handlers == contract.HANDLERS
    # each Gosub's status variable is one its handler sets
    assert all(status in contract.SETS[name] for name, status in calls.items())
    used = set(re.findall(r"\bSB_[A-Z0-9_]+", text))
    assert used <= contract.ALL
    read = (set(re.findall(r"\$\{(SB_[A-Z0-9_]+)", text)) | set(calls.values())
            | set().union(*contract.READS.values()))
    assert set().union(*contract.SETS.values()) <= read


def test_a_named_legacy_phone_must_accept_only_its_own_address(tmp_path: Path) -> None:
    """Clear SIP for a phone is the site's explicit choice (site/edge.conf names
    it) and then only from its own address (permit/deny on its endpoint)."""
    copy = broken_copy(tmp_path, "site.example/phones.conf", "[2002](sb-phone,loc-hq-3)",
                       "[2002](sb-phone-clear,loc-hq-3)")
    edge = copy / "site.example" / "edge.conf"
    edge.write_text(edge.read_text().replace("clear_phones =", "clear_phones = 2002"))
    transports = copy / "site.example" / "transports.conf"
    transports.write_text(transports.read_text() + "[transport-clear]\ntype = transport\n"
                          "protocol = udp\nbind = 192.0.2.20:5070\n")
    findings = dialcheck.check(copy)
    assert [(f.code, f.message.split(":")[0]) for f in findings] == [
        ("SB-TLS", "legacy phone 2002 in clear accepts any address")]
    phones = copy / "site.example" / "phones.conf"
    phones.write_text(phones.read_text().replace(
        'callerid = "Agent 2002" <2002>',
        'callerid = "Agent 2002" <2002>\ndeny = 0.0.0.0/0.0.0.0\n'
        "permit = 192.0.2.102/255.255.255.255"))
    assert dialcheck.check(copy) == []
