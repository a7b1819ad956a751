"""Deploy and rollback against a temporary configuration directory and a fake
Asterisk on a real AMI socket (ami_listener.replay.ReplayServer: the recorded
login, and Command replies in the recorded shape: one Output header per line)."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ami_listener.replay import ReplayServer, ServerOptions
from switchboard import deploy
from switchboard.dialcheck import DIALPLAN_DIR

SECRET = "opspass-for-tests"


class FakeAsterisk:
    """What Asterisk has loaded, read from the live files on each reload."""

    def __init__(self, confdir: Path) -> None:
        self.confdir = confdir
        self.contexts: set[str] = set()
        self.endpoints: set[str] = set()
        self.queues: set[str] = set()
        self.commands: list[str] = []
        self.drop_context: str | None = None  # a context this Asterisk fails to load
        self.refuse: set[str] = set()

    def sections(self, *files: str) -> list[str]:
        out = []
        for f in files:
            path = self.confdir / f
            if path.exists():
                out += re.findall(r"^\[([^\]]+)\](?:\(([^)]*)\))?", path.read_text(), re.M)
        return [name for name, opts in out if "!" not in opts]

    def __call__(self, cli: str) -> tuple[bool, list[str]]:
        self.commands.append(cli)
        if cli in self.refuse:
            return False, ["Permission denied"]
        if cli == "dialplan reload":
            self.contexts = set(self.sections("extensions.conf")) - {"general", "globals",
                                                                   self.drop_context or ""}
            return True, ["Dialplan reloaded."]
        if cli == "module reload res_pjsip.so":
            pj = self.sections("pjsip.conf", "site/trunk.conf", "site/phones.conf")
            self.endpoints = {n for n in pj if not n.startswith(("transport", "sb-"))}
            return True, ["Module 'res_pjsip.so' reloaded successfully."]
        if cli == "queue reload all":
            self.queues = set(self.sections("queues.conf")) - {"general"}
            return True, []
        if cli in ("manager reload", "logger reload", "moh reload"):
            return True, []
        if cli.startswith("dialplan show "):
            ctx = cli.split(" ", 2)[2]
            if ctx in self.contexts:
                return True, [f"[ Context '{ctx}' created by 'pbx_config' ]",
                              "  's' =>            1. NoOp()   [extensions.conf:1]", "",
                              "-= 1 extension (1 priority) in 1 context. =-"]
            return True, [f"There is no existence of '{ctx}' context"]
        if cli == "pjsip show endpoints":
            return True, [f" Endpoint:  {e}/{e}    Not in use    0 of inf"
                          for e in sorted(self.endpoints)]
        if cli == "queue show":
            return True, [f"{q} has 0 calls (max unlimited) in 'rrmemory' strategy "
                          "(0s holdtime, 0s talktime), W:0, C:0, A:0, SL:0.0%, SL2:0.0% "
                          "within 20s" for q in sorted(self.queues)]
        return True, [f"No such command '{cli}' (type 'core show help {cli}' for help)"]


def confdir_with_site(tmp: Path) -> Path:
    confdir = tmp / "etc-asterisk"
    confdir.mkdir()
    shutil.copytree(DIALPLAN_DIR / "site.example", confdir / "site")
    return confdir


def run(tmp: Path, scenario: Callable[[Path, FakeAsterisk, deploy.AmiOps, list[str]], Any]
        ) -> Any:
    confdir = confdir_with_site(tmp)
    fake = FakeAsterisk(confdir)

    async def main() -> Any:
        server = ReplayServer([], ServerOptions(username="ops", secret=SECRET,
                                                command=fake, resync_first=False))
        port = await server.start()
        try:
            said: list[str] = []
            ami = deploy.AmiOps("127.0.0.1", port, "ops", SECRET, timeout_s=5)
            return await scenario(confdir, fake, ami, said), server.stats
        finally:
            await server.close()
    return asyncio.run(main())


def edited_copy(tmp: Path, name: str, old: str, new: str) -> Path:
    copy = tmp / "dialplan-edited"
    shutil.copytree(DIALPLAN_DIR, copy)
    text = (copy / name).read_text()
    assert old in text
    (copy / name).write_text(text.replace(old, new, 1))
    return copy


async def audit_rows(db_url: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(db_url)
    try:
        return [(r["action"], r["result"]) for r in await conn.fetch(
            "SELECT action, result FROM audit_log WHERE action LIKE 'dialplan-%' ORDER BY at")]
    finally:
        await conn.close()


def test_first_deploy_writes_everything_reloads_and_confirms(tmp_path: Path,
                                                             db_url: str) -> None:
    async def scenario(confdir: Path, fake: FakeAsterisk, ami: deploy.AmiOps,
                       said: list[str]) -> Any:
        status = await deploy.deploy(DIALPLAN_DIR, confdir, ami, dry_run=False,
                                     database_url=db_url, say=said.append)
        again = await deploy.deploy(DIALPLAN_DIR, confdir, ami, dry_run=False,
                                    database_url=db_url, say=said.append)
        return status, again, await audit_rows(db_url)
    (status, again, rows), _ = run(tmp_path, scenario)
    confdir = tmp_path / "etc-asterisk"
    assert status == 0 and again == 0
    for f in DIALPLAN_DIR.glob("*.conf"):
        assert (confdir / f.name).read_text() == f.read_text()
    assert rows == [("dialplan-deploy", "ok")]  # the second run had nothing to do


def test_only_what_changed_is_reloaded_and_rollback_restores_it(tmp_path: Path) -> None:
    edited = edited_copy(tmp_path, "extensions.conf", "Playback(hello-world)",
                         "Playback(hello-world&beep)")

    async def scenario(confdir: Path, fake: FakeAsterisk, ami: deploy.AmiOps,
                       said: list[str]) -> Any:
        await deploy.deploy(DIALPLAN_DIR, confdir, ami, dry_run=False, database_url=None,
                            say=said.append)
        fake.commands.clear()
        said.clear()
        await deploy.deploy(edited, confdir, ami, dry_run=False, database_url=None,
                            say=said.append)
        deployed = (confdir / "extensions.conf").read_text()
        reloads = [c for c in fake.commands if "show" not in c]
        diff = list(said)
        await deploy.rollback(confdir, ami, dry_run=False, database_url=None,
                              say=said.append)
        rolled = (confdir / "extensions.conf").read_text()
        await deploy.rollback(confdir, ami, dry_run=False, database_url=None,
                              say=said.append)  # a rollback can be rolled back
        forward = (confdir / "extensions.conf").read_text()
        return deployed, reloads, diff, rolled, forward
    (deployed, reloads, diff, rolled, forward), _ = run(tmp_path, scenario)
    assert "hello-world&beep" in deployed
    assert reloads == ["dialplan reload"]
    assert "extensions.conf: +1 -1" in diff
    assert any(x.strip() == "+ same => n,Playback(hello-world&beep)" for x in diff)
    assert rolled == (DIALPLAN_DIR / "extensions.conf").read_text()
    assert forward == deployed


def test_a_failing_reload_puts_the_previous_version_back(tmp_path: Path,
                                                         db_url: str) -> None:
    edited = edited_copy(tmp_path, "extensions.conf", "[sb-pause]", "[sb-pause-new]")
    edited.joinpath("extensions.conf").write_text(
        edited.joinpath("extensions.conf").read_text().replace("sb-pause,s,1", "sb-pause-new,s,1"))

    async def scenario(confdir: Path, fake: FakeAsterisk, ami: deploy.AmiOps,
                       said: list[str]) -> Any:
        await deploy.deploy(DIALPLAN_DIR, confdir, ami, dry_run=False, database_url=None,
                            say=said.append)
        fake.drop_context = "sb-pause-new"  # Asterisk does not load the new context
        fake.commands.clear()
        with pytest.raises(deploy.DeployError, match="context sb-pause-new is not loaded"):
            await deploy.deploy(edited, confdir, ami, dry_run=False, database_url=db_url,
                                say=said.append)
        return list(fake.commands), (confdir / "extensions.conf").read_text(), \
            await audit_rows(db_url), said
    (commands, live, rows, said), _ = run(tmp_path, scenario)
    assert live == (DIALPLAN_DIR / "extensions.conf").read_text()  # the old one is back
    assert commands.count("dialplan reload") == 2  # the new, then the old again
    assert "previous version restored and confirmed" in said
    assert rows == [("dialplan-deploy", "rolled-back")]


def test_a_refused_reload_also_rolls_back(tmp_path: Path) -> None:
    edited = edited_copy(tmp_path, "queues.conf", "wrapuptime = 15", "wrapuptime = 10")

    async def scenario(confdir: Path, fake: FakeAsterisk, ami: deploy.AmiOps,
                       said: list[str]) -> Any:
        await deploy.deploy(DIALPLAN_DIR, confdir, ami, dry_run=False, database_url=None,
                            say=said.append)
        fake.refuse.add("queue reload all")
        with pytest.raises(deploy.DeployError, match="Permission denied"):
            await deploy.deploy(edited, confdir, ami, dry_run=False, database_url=None,
                                say=said.append)
        return (confdir / "queues.conf").read_text()
    live, _ = run(tmp_path, scenario)
    assert live == (DIALPLAN_DIR / "queues.conf").read_text()


def test_dry_run_touches_nothing_and_a_failed_check_refuses(tmp_path: Path) -> None:
    broken = edited_copy(tmp_path, "extensions.conf", "Queue(overflow,", "Queue(overfow,")

    async def scenario(confdir: Path, fake: FakeAsterisk, ami: deploy.AmiOps,
                       said: list[str]) -> Any:
        status = await deploy.deploy(DIALPLAN_DIR, confdir, ami, dry_run=True,
                                     database_url=None, say=said.append)
        with pytest.raises(deploy.DeployError, match="dialplan check failed"):
            await deploy.deploy(broken, confdir, ami, dry_run=False, database_url=None,
                                say=said.append)
        return status, sorted(p.name for p in confdir.iterdir()), said
    (status, files, said), stats = run(tmp_path, scenario)
    assert status == 0 and files == ["site"]
    assert stats.connections == 0  # no AMI session at all
    assert "dry run: nothing written, nothing reloaded" in said
    actions = next(x for x in said if x.startswith("actions: "))
    for action in ("dialplan reload", "module reload res_pjsip.so", "queue reload all",
                   "manager reload", "(restart for modules.conf)"):
        assert action in actions
    assert any(x.startswith("extensions.conf:") and "SB-QUEUE" in x for x in said)


def test_unreachable_ami_writes_nothing(tmp_path: Path) -> None:
    async def scenario(confdir: Path, fake: FakeAsterisk, ami: deploy.AmiOps,
                       said: list[str]) -> Any:
        wrong = deploy.AmiOps(ami.host, ami.port, "ops", "wrong-secret", timeout_s=5)
        with pytest.raises(deploy.DeployError, match="login as ops refused"):
            await deploy.deploy(DIALPLAN_DIR, confdir, wrong, dry_run=False,
                                database_url=None, say=said.append)
        return sorted(p.name for p in confdir.iterdir() if not p.name.startswith("."))
    files, _ = run(tmp_path, scenario)
    assert files == ["site"]


def test_cli_dry_run_and_a_missing_ops_secret(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    cli = Path(sys.executable).parent / "switchboard"
    confdir = confdir_with_site(tmp_path)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/tmp",
           "SB_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    dry = subprocess.run([str(cli), "dialplan", "deploy", "--confdir", str(confdir),
                          "--dry-run"], env=env, capture_output=True, text=True, timeout=120,
                         check=False)
    assert dry.returncode == 0, dry.stderr
    assert "extensions.conf: +" in dry.stdout and "dry run" in dry.stdout
    assert sorted(p.name for p in confdir.iterdir()) == ["site"]
    real = subprocess.run([str(cli), "dialplan", "deploy", "--confdir", str(confdir)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert real.returncode == 1 and "SB_AMI_OPS_SECRET_FILE" in real.stderr
