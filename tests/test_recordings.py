"""Recordings after the call, on the real tools (Debian's age and opus-tools)
and a real PostgreSQL, through the installed `switchboard` command: the
shipper seals, stores and indexes what MixMonitor finished and nothing else;
the store holds only ciphertext the node cannot open; the audio that comes
back with the private key is the call's; `audit verify` finds a replaced
file; the purge keeps what a legal hold keeps.  The live tier records a real
call through Asterisk (tests/live/test_live_supervisor.py)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path

import asyncpg
import pytest

from tests.audio import opus_to_wav, read_wav, strength, tone, write_wav
from tests.helpers import CLI, db_env

pytestmark = pytest.mark.skipif(
    shutil.which("age") is None or shutil.which("opusenc") is None,
    reason="recordings: age and opus-tools not installed (make test installs them)")

CALL, LEG = "1733400000.101", "1733400000.102"


def keys(tmp: Path) -> tuple[Path, Path]:
    identity = tmp / "playback" / "recordings.key"
    identity.parent.mkdir()
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipients = tmp / "node" / "recipients.txt"
    recipients.parent.mkdir()
    pub = subprocess.run(["age-keygen", "-y", str(identity)], check=True,
                         capture_output=True, text=True).stdout
    recipients.write_text(pub)
    return identity, recipients


def env(db_url: str, tmp: Path, recipients: Path) -> dict[str, str]:
    return {**os.environ, **db_env(db_url), "SB_STATE_DIR": str(tmp / "state"),
            "SB_REC_SPOOL": str(tmp / "node" / "spool"), "SB_REC_STORE": str(tmp / "store"),
            "SB_REC_RECIPIENTS_FILE": str(recipients), "SB_REC_NODE": "node-a",
            "SB_LOG_FORMAT": "json", "SB_AUDIT_KEY_FILE": str(audit_key(tmp)),
            "SB_AUDIT_ANCHOR_FILE": str(tmp / "anchors.log")}


def audit_key(tmp: Path) -> Path:
    key = tmp / "audit.key"
    if not key.exists():
        key.write_text(os.urandom(32).hex())
        key.chmod(0o600)
    return key


def cli(e: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], env=e, capture_output=True, text=True,
                          timeout=120, check=False)


async def rows(db_url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(db_url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def test_ship_seals_stores_and_indexes_only_finished_recordings(db_url: str,
                                                                 tmp_path: Path) -> None:
    identity, recipients = keys(tmp_path)
    e = env(db_url, tmp_path, recipients)
    spool = tmp_path / "node" / "spool"
    (spool / "done").mkdir(parents=True)
    write_wav(spool / "done" / f"{CALL}__{LEG}.wav", tone(600, 3.0))
    # Asterisk died mid-call: the file never reached done/, untouched for long
    stale = spool / "1733400000.201__1733400000.202.wav"
    write_wav(stale, tone(600, 1.0))
    os.utime(stale, (time.time() - 600, time.time() - 600))
    # a call still being recorded: not touched
    live = spool / "1733400000.301__1733400000.302.wav"
    write_wav(live, tone(600, 0.5))
    # not a recording's name: never read
    (spool / "done" / "notes.wav").write_bytes(b"x")

    out = cli(e, "recordings", "ship", "--once")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 stored, 0 waiting" in out.stdout
    assert live.exists() and not stale.exists()
    assert not list((spool / "done").glob("17*.wav")) and not list(
        (spool / "sealed").iterdir())
    stored = sorted((tmp_path / "store").rglob("*.opus.age"))
    assert [p.name for p in stored] == ["1733400000.101__1733400000.102.opus.age",
                                        "1733400000.201__1733400000.202.opus.age"]
    assert all(p.relative_to(tmp_path / "store").parts[0] == "node-a" for p in stored)
    for p in stored:  # ciphertext only: no WAV, no Ogg, no audio the node can read
        head = p.read_bytes()[:40]
        assert head.startswith(b"age-encryption.org/v1") and b"OggS" not in p.read_bytes()
    # nothing on the node can open them: the node has only the public key
    denied = subprocess.run(["age", "-d", "-i", str(recipients), str(stored[0])],
                            capture_output=True, check=False)
    assert denied.returncode != 0

    got = asyncio.run(rows(db_url, "SELECT * FROM recording ORDER BY uniqueid"))
    assert [(r["uniqueid"], r["leg"], r["node"], r["format"]) for r in got] == [
        (CALL, LEG, "node-a", "opus"), ("1733400000.201", "1733400000.202", "node-a", "opus")]
    assert float(got[0]["seconds"]) == pytest.approx(3.0, abs=0.05)
    audit = asyncio.run(rows(db_url, "SELECT uniqueid, actor, detail FROM audit_log WHERE "
                             "action = 'recording-stored' ORDER BY uniqueid"))
    assert [(a["uniqueid"], a["actor"]) for a in audit] == [
        (CALL, "recorder:node-a"), ("1733400000.201", "recorder:node-a")]
    assert audit[0]["detail"].startswith(bytes(got[0]["sha256"]).hex())

    # the playback host's private key gives the call's audio back
    opus = tmp_path / "back.opus"
    subprocess.run(["age", "-d", "-i", str(identity), "-o", str(opus), str(stored[0])],
                   check=True)
    wav = tmp_path / "back.wav"
    opus_to_wav(opus, wav)
    samples, rate = read_wav(wav)
    assert len(samples) / rate == pytest.approx(3.0, abs=0.1)
    assert strength(samples, rate, 600) > 0.5 > strength(samples, rate, 1000)

    # shipping again changes nothing (a retry is harmless)
    again = cli(e, "recordings", "ship", "--once")
    assert again.returncode == 0 and "0 stored, 0 waiting" in again.stdout
    assert len(asyncio.run(rows(db_url, "SELECT 1 FROM recording"))) == 2


def test_a_database_outage_keeps_the_sealed_file_until_it_is_indexed(
        db_url: str, tmp_path: Path) -> None:
    _identity, recipients = keys(tmp_path)
    e = env(db_url, tmp_path, recipients)
    spool = tmp_path / "node" / "spool"
    (spool / "done").mkdir(parents=True)
    write_wav(spool / "done" / f"{CALL}__{LEG}.wav", tone(600, 1.0))
    down = {**e, "SB_RECORDER_DATABASE_URL": "postgresql://sb_recorder@127.0.0.1:9/none"}
    out = cli(down, "recordings", "ship", "--once")
    assert out.returncode == 1 and "0 stored, 1 waiting" in out.stdout
    # the clear file is gone already; only ciphertext waits on the node
    assert not list(spool.rglob("*.wav"))
    assert len(list((spool / "sealed").glob("*.opus.age"))) == 1
    out = cli(e, "recordings", "ship", "--once")
    assert out.returncode == 0 and "1 stored, 0 waiting" in out.stdout
    assert len(asyncio.run(rows(db_url, "SELECT 1 FROM recording"))) == 1


def test_audit_verify_finds_a_replaced_recording_and_purge_keeps_held_calls(
        db_url: str, tmp_path: Path) -> None:
    _identity, recipients = keys(tmp_path)
    e = env(db_url, tmp_path, recipients)
    spool = tmp_path / "node" / "spool"
    (spool / "done").mkdir(parents=True)
    for n in (1, 2, 3):
        write_wav(spool / "done" / f"17334000{n}0.1__17334000{n}0.2.wav", tone(600, 0.5))
    assert cli(e, "recordings", "ship", "--once").returncode == 0
    assert cli(e, "audit", "anchor").returncode == 0
    intact = cli(e, "audit", "verify")
    assert intact.returncode == 0, intact.stdout
    assert "recordings: 3 kept in the store" in intact.stdout
    assert "every recording as audited" in intact.stdout

    stored = sorted((tmp_path / "store").rglob("*.opus.age"))
    # someone swaps one file for another sealed recording (valid ciphertext)
    stored[1].write_bytes(stored[2].read_bytes())
    out = cli(e, "audit", "verify", "--metrics-file", str(tmp_path / "audit.prom"))
    assert out.returncode == 1
    assert "call 1733400020.1): the stored file was replaced or edited" in out.stdout
    assert "sb_audit_verify_ok 0" in (tmp_path / "audit.prom").read_text()
    stored[1].unlink()
    out = cli(e, "audit", "verify")
    assert "call 1733400020.1): missing from the store" in out.stdout

    # retention: all three are old; one call is under a legal hold
    asyncio.run(rows(db_url, "UPDATE recording SET started_at = now() - interval '200 days'"))
    held = cli(e, "recordings", "hold", "1733400010.1", "--reason", "subpoena 24-117")
    assert held.returncode == 0 and "held" in held.stdout
    dry = cli(e, "recordings", "purge", "--dry-run")
    assert "would delete 2 recordings older than 180 days" in dry.stdout
    assert len(list((tmp_path / "store").rglob("*.opus.age"))) == 2
    out = cli(e, "recordings", "purge")
    assert out.returncode == 0, out.stderr
    assert "deleted 2 recordings older than 180 days (1 already gone from the store); " \
           "1 kept by legal holds" in out.stdout
    left = sorted((tmp_path / "store").rglob("*.opus.age"))
    assert [p.name for p in left] == ["1733400010.1__1733400010.2.opus.age"]
    audit = asyncio.run(rows(db_url, "SELECT uniqueid, action, result FROM audit_log "
                             "WHERE action IN ('recording-purged', 'legal-hold') "
                             "ORDER BY seq, chain"))
    assert sorted((a["uniqueid"], a["action"]) for a in audit) == [
        ("1733400010.1", "legal-hold"), ("1733400020.1", "recording-purged"),
        ("1733400030.1", "recording-purged")]
    assert cli(e, "audit", "anchor").returncode == 0
    after = cli(e, "audit", "verify")
    assert after.returncode == 0 and "recordings: 1 kept in the store" in after.stdout
    # released, the next purge takes it too
    assert "released" in cli(e, "recordings", "release", "1733400010.1").stdout
    assert "deleted 1 recordings" in cli(e, "recordings", "purge").stdout
    assert not list((tmp_path / "store").rglob("*.opus.age"))


def test_ship_refuses_to_run_without_the_public_key(db_url: str, tmp_path: Path) -> None:
    e = env(db_url, tmp_path, tmp_path / "missing.txt")
    out = cli(e, "recordings", "ship", "--once")
    assert out.returncode == 2
    assert "SB_REC_RECIPIENTS_FILE must name the age public key" in out.stderr
    bad = cli(e, "recordings", "hold", "x;drop", "--reason", "r")
    assert bad.returncode == 2 and "is not a call's uniqueid" in bad.stderr


def test_doctor_checks_the_recordings_keys_and_store(db_url: str, tmp_path: Path) -> None:
    identity, recipients = keys(tmp_path)
    e = env(db_url, tmp_path, recipients)
    doc = cli(e, "doctor").stdout
    assert "OK    recording  node: seals to 1 public key(s)" in doc, doc
    assert "WARN  recording  the store folder" in doc  # made by the first ship
    # the private key on a node, readable by others: both said
    identity.chmod(0o644)
    doc = cli({**e, "SB_REC_IDENTITY_FILE": str(identity)}, "doctor").stdout
    assert "WARN  recording  this node also holds the private key" in doc, doc
    assert f"FAIL  recording  {identity} is readable by others: chmod 600" in doc
    # a public-key file with no key in it
    recipients.write_text("# nothing here\n")
    doc = cli(e, "doctor").stdout
    assert "no age1... public key in it: the shipper cannot seal" in doc, doc
