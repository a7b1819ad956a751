"""Deploy, rollback and confirm against a temporary configuration folder and a
fake Asterisk on a real AMI socket (ami_listener.replay.ReplayServer: the
recorded login, and Command replies in the recorded shape: one Output header per
line).  The fake "loads" the files it finds in the folder the way Asterisk
does: modules.conf only when it starts, the rest on each reload.  A real
Asterisk runs the same commands in tests/live."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from switchboard.ami_listener.replay import ReplayServer, ServerOptions
from switchboard.dialplan_tools import deploy
from switchboard.dialplan_tools.dialcheck import (
    DIALPLAN_DIR,
    endpoints,
    explicit_loads,
    load_conf,
    queue_strategies,
)
from switchboard.pgcluster import free_port

SECRET = "opspass-for-tests"


class FakeAsterisk:
    """What Asterisk has loaded, read from the live files on each reload."""

    def __init__(self, confdir: Path) -> None:
        self.confdir = confdir
        self.contexts: set[str] = set()
        self.endpoints: set[str] = set()
        self.queues: dict[str, str] = {}
        self.modules: dict[str, str] = {}
        self.commands: list[str] = []
        self.drop_context: str | None = None  # a context this Asterisk fails to load
        self.not_running: set[str] = set()  # modules that decline to load
        self.strategy_stuck = False  # report rrmemory for every queue (the template bug)
        self.refuse: set[str] = set()
        self.config_dir = confdir

    def start(self) -> FakeAsterisk:
        """Asterisk starting: modules.conf applies now, and everything loads."""
        loads = explicit_loads(load_conf(self.confdir / "modules.conf", self.confdir)) or {}
        self.modules = {m: ("Not Running" if m in self.not_running else "Running")
                        for m in loads}
        for cli in ("dialplan reload", "module reload res_pjsip.so", "queue reload all"):
            self(cli)
        self.commands.clear()
        return self

    def __call__(self, cli: str) -> tuple[bool, list[str]]:
        self.commands.append(cli)
        c = self.confdir
        if cli in self.refuse:
            return False, ["Permission denied"]
        if cli == "dialplan reload":
            ext = load_conf(c / "extensions.conf", c)
            self.contexts = set(ext.sections) - {"general", "globals", self.drop_context or ""}
            return True, ["Dialplan reloaded."]
        if cli == "module reload res_pjsip.so":
            self.endpoints = endpoints(load_conf(c / "pjsip.conf", c))
            return True, ["Module 'res_pjsip.so' reloaded successfully."]
        if cli == "queue reload all":
            self.queues = queue_strategies(load_conf(c / "queues.conf", c))
            if self.strategy_stuck:
                self.queues = dict.fromkeys(self.queues, "rrmemory")
            return True, []
        if cli in ("manager reload", "logger reload", "moh reload") or \
                cli.startswith("module reload "):
            return True, []
        if cli == "core show settings":
            return True, ["PBX Core settings", "-----------------",
                          f"  Configuration file:          {self.config_dir}/asterisk.conf",
                          f"  Configuration directory:     {self.config_dir}"]
        if cli == "module show":
            return True, ["Module                         Description  Use Count  Status"
                          "      Support Level"] + [
                f"{m:<30} Something  0  {st}  core" for m, st in sorted(self.modules.items())
            ] + [f"{len(self.modules)} modules loaded"]
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
            return True, [f"{q} has 0 calls (max unlimited) in '{s}' strategy "
                          "(0s holdtime, 0s talktime), W:0, C:0, A:0, SL:0.0%, SL2:0.0% "
                          "within 20s" for q, s in sorted(self.queues.items())]
        return True, [f"No such command '{cli}' (type 'core show help {cli}' for help)"]


def site_source(tmp: Path) -> Path:
    """The example site files, their secrets in a folder of the test's own (deploy
    checks that every file #included from outside the configuration exists)."""
    site = tmp / "site-src"
    secrets = tmp / "secrets"
    shutil.copytree(DIALPLAN_DIR / "site.example", site)
    secrets.mkdir()
    for f in site.glob("*.conf"):
        f.write_text(f.read_text().replace("/etc/asterisk/secrets/", f"{secrets}/"))
    for name, text in (("ami-listener.conf", "secret = x\n"), ("ami-ops.conf", "secret = y\n"),
                       ("ami-panel.conf", "secret = z\n"),
                       ("phones.conf", "")):
        (secrets / name).write_text(text)
    (secrets / "tls").mkdir()
    for name in ("sip.crt", "sip.key"):  # the phones' TLS certificate and key
        (secrets / "tls" / name).write_text("placeholder\n")
    return site


def first_install(confdir: Path, site: Path, database_url: str | None = None) -> list[str]:
    said: list[str] = []
    nobody = deploy.AmiOps("127.0.0.1", free_port(), "ops", SECRET, timeout_s=2)
    asyncio.run(deploy.deploy(DIALPLAN_DIR, confdir, nobody, dry_run=False,
                              database_url=database_url, site_dir=site, first_install=True,
                              say=said.append))
    return said


def run(tmp: Path, scenario: Callable[[Path, Path, FakeAsterisk, deploy.AmiOps, list[str]],
                                      Any], *, installed: bool = True,
        fake_setup: Callable[[FakeAsterisk], None] | None = None) -> Any:
    """A node whose first install is done (unless ``installed`` is false) and
    whose Asterisk (the fake) runs; then ``scenario``."""
    confdir = tmp / "etc-asterisk"
    confdir.mkdir()
    site = site_source(tmp)
    if installed:
        first_install(confdir, site)
    fake = FakeAsterisk(confdir)
    if fake_setup:
        fake_setup(fake)
    if installed:
        fake.start()

    async def main() -> Any:
        server = ReplayServer([], ServerOptions(username="ops", secret=SECRET,
                                                command=fake, resync_first=False))
        port = await server.start()
        try:
            said: list[str] = []
            ami = deploy.AmiOps("127.0.0.1", port, "ops", SECRET, timeout_s=5)
            return await scenario(confdir, site, fake, ami, said), server.stats
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


def test_first_install_writes_everything_then_confirm_checks_the_running_node(
        tmp_path: Path, db_url: str) -> None:
    """A new node: the AMI users come from the very files being deployed, so
    deploy --first-install writes them while Asterisk is stopped (nothing to log
    in to), then Asterisk starts and confirm compares it with the files."""
    confdir = tmp_path / "etc-asterisk"
    confdir.mkdir()
    site = site_source(tmp_path)
    said = first_install(confdir, site, db_url)
    assert any(x.startswith("written ") and "dialplan confirm" in x for x in said)
    for f in DIALPLAN_DIR.glob("*.conf"):
        if f.name != "asterisk.conf":
            assert (confdir / f.name).read_text() == f.read_text()
    for f in site.glob("*.conf"):
        assert (confdir / "site" / f.name).read_text() == f.read_text()
    # Asterisk resolves includes in asterisk.conf against its built-in folder:
    # deploy writes them absolute
    assert f'#include "{confdir}/site/node.conf"' in (confdir / "asterisk.conf").read_text()
    fake = FakeAsterisk(confdir).start()

    async def confirm_it(port_holder: list[int]) -> list[str]:
        server = ReplayServer([], ServerOptions(username="ops", secret=SECRET, command=fake,
                                                resync_first=False))
        port = await server.start()
        try:
            out: list[str] = []
            await deploy.confirm(confdir, deploy.AmiOps("127.0.0.1", port, "ops", SECRET),
                                 database_url=db_url, say=out.append)
            return out
        finally:
            await server.close()
    out = asyncio.run(confirm_it([]))
    assert any("confirmed:" in x and "intake rrmemory, priority leastrecent, overflow ringall"
               in x for x in out), out
    assert asyncio.run(audit_rows(db_url)) == [("dialplan-deploy", "written"),
                                               ("dialplan-confirm", "ok")]


def test_first_install_is_refused_when_asterisk_answers(tmp_path: Path) -> None:
    async def scenario(confdir: Path, site: Path, fake: FakeAsterisk, ami: deploy.AmiOps,
                       said: list[str]) -> Any:
        with pytest.raises(deploy.DeployError, match="not a first install"):
            await deploy.deploy(DIALPLAN_DIR, confdir, ami, dry_run=False, database_url=None,
                                site_dir=site, first_install=True, say=said.append)
        return sorted(p.name for p in confdir.iterdir() if not p.name.startswith("."))
    files, _ = run(tmp_path, scenario, installed=False)
    assert files == []


def test_an_edited_site_file_is_deployed_reloaded_and_rolled_back(tmp_path: Path) -> None:
    """Site files are deployed like the rest: an edited dids.conf is diffed,
    written into site/, reloaded (by the file that includes it) and confirmed;
    rollback puts it back, and a second rollback goes forward again."""
    async def scenario(confdir: Path, site: Path, fake: FakeAsterisk, ami: deploy.AmiOps,
                       said: list[str]) -> Any:
        nothing = await deploy.deploy(DIALPLAN_DIR, confdir, ami, dry_run=False,
                                      database_url=None, site_dir=site, say=said.append)
        assert said[-1] == "nothing to deploy: the live files are the same" and nothing == 0
        said.clear()
        dids = site / "dids.conf"
        dids.write_text(dids.read_text() + "exten => 6155550199,1,Goto(sb-inbound,s,1)\n")
        await deploy.deploy(DIALPLAN_DIR, confdir, ami, dry_run=False, database_url=None,
                            site_dir=site, say=said.append)
        deployed = (confdir / "site" / "dids.conf").read_text()
        reloads = [c for c in fake.commands if "show" not in c]
        diff = list(said)
        await deploy.rollback(confdir, ami, dry_run=False, database_url=None, say=said.append)
        rolled = (confdir / "site" / "dids.conf").read_text()
        await deploy.rollback(confdir, ami, dry_run=False, database_url=None, say=said.append)
        return deployed, reloads, diff, rolled, (confdir / "site" / "dids.conf").read_text()
    (deployed, reloads, diff, rolled, forward), _ = run(tmp_path, scenario)
    assert "6155550199" in deployed and "6155550199" not in rolled and forward == deployed
    assert reloads == ["dialplan reload"]
    assert "site/dids.conf: +1 -0" in diff
    assert any(x.strip() == "+exten => 6155550199,1,Goto(sb-inbound,s,1)" for x in diff)
    assert any(x.startswith("  confirmed: ") for x in diff)


def test_site_files_reload_what_includes_them(tmp_path: Path) -> None:
    async def scenario(confdir: Path, site: Path, fake: FakeAsterisk, ami: deploy.AmiOps,
                       said: list[str]) -> Any:
        (site / "trunk.conf").write_text((site / "trunk.conf").read_text().replace(
            "dtmf_mode = rfc4733", "dtmf_mode = info"))
        (site / "node.conf").write_text((site / "node.conf").read_text().replace(
            "pbx-a", "pbx-b"))
        await deploy.deploy(DIALPLAN_DIR, confdir, ami, dry_run=False, database_url=None,
                            site_dir=site, say=said.append)
        return [c for c in fake.commands if "show" not in c], said
    (reloads, said), _ = run(tmp_path, scenario)
    assert reloads == ["module reload res_pjsip.so"]
    assert any("site/node.conf take effect at the next Asterisk restart" in x for x in said)


def test_a_failing_reload_puts_the_previous_version_back(tmp_path: Path,
                                                         db_url: str) -> None:
    edited = edited_copy(tmp_path, "extensions.conf", "[sb-pause]", "[sb-pause-new]")
    edited.joinpath("extensions.conf").write_text(
        edited.joinpath("extensions.conf").read_text().replace("sb-pause,s,1", "sb-pause-new,s,1"))

    async def scenario(confdir: Path, site: Path, fake: FakeAsterisk, ami: deploy.AmiOps,
                       said: list[str]) -> Any:
        fake.drop_context = "sb-pause-new"  # Asterisk does not load the new context
        with pytest.raises(deploy.DeployError, match="context sb-pause-new is not loaded"):
            await deploy.deploy(edited, confdir, ami, dry_run=False, database_url=db_url,
                                site_dir=site, say=said.append)
        return list(fake.commands), (confdir / "extensions.conf").read_text(), \
            await audit_rows(db_url), said
    (commands, live, rows, said), _ = run(tmp_path, scenario)
    assert live == (DIALPLAN_DIR / "extensions.conf").read_text()  # the old one is back
    assert commands.count("dialplan reload") == 2  # the new, then the old again
    assert "previous version restored and confirmed" in said
    assert rows == [("dialplan-deploy", "rolled-back")]


def test_a_refused_reload_also_rolls_back(tmp_path: Path) -> None:
    edited = edited_copy(tmp_path, "queues.conf", "wrapuptime = 15", "wrapuptime = 10")

    async def scenario(confdir: Path, site: Path, fake: FakeAsterisk, ami: deploy.AmiOps,
                       said: list[str]) -> Any:
        fake.refuse.add("queue reload all")
        with pytest.raises(deploy.DeployError, match="Permission denied"):
            await deploy.deploy(edited, confdir, ami, dry_run=False, database_url=None,
                                site_dir=site, say=said.append)
        return (confdir / "queues.conf").read_text()
    live, _ = run(tmp_path, scenario)
    assert live == (DIALPLAN_DIR / "queues.conf").read_text()


@pytest.mark.parametrize(("setup", "problem"), [
    (lambda f: f.not_running.add("res_agi.so"), "modules not running: res_agi.so (Not Running)"),
    (lambda f: setattr(f, "strategy_stuck", True),
     "queue priority runs strategy rrmemory, the files say leastrecent"),
    (lambda f: setattr(f, "config_dir", Path("/opt/elsewhere/etc/asterisk")),
     "Asterisk reads its configuration from /opt/elsewhere/etc/asterisk"),
], ids=["a module not running", "a queue's strategy ignored", "another config folder"])
def test_confirmation_confirms_modules_strategies_and_the_folder(
        tmp_path: Path, setup: Callable[[FakeAsterisk], None], problem: str) -> None:
    """What a live node showed: chan_pjsip and res_agi not running, every queue
    on rrmemory, while deploy said "confirmed".  Any such difference is now a
    failed deploy that rolls back."""
    edited = edited_copy(tmp_path, "queues.conf", "wrapuptime = 15", "wrapuptime = 10")

    async def scenario(confdir: Path, site: Path, fake: FakeAsterisk, ami: deploy.AmiOps,
                       said: list[str]) -> Any:
        with pytest.raises(deploy.DeployError) as err:
            await deploy.deploy(edited, confdir, ami, dry_run=False, database_url=None,
                                site_dir=site, say=said.append)
        return str(err.value), (confdir / "queues.conf").read_text()
    (message, live), _ = run(tmp_path, scenario, fake_setup=setup)
    assert problem in message
    assert live == (DIALPLAN_DIR / "queues.conf").read_text()


def test_a_refused_deploy_writes_nothing_and_keeps_the_rollback_point(
        tmp_path: Path, db_url: str) -> None:
    """AMI unreachable (or the login refused): nothing is written, the kept
    previous version is untouched (rollback still has something to roll back),
    and the audit row says refused."""
    edited = edited_copy(tmp_path, "queues.conf", "wrapuptime = 15", "wrapuptime = 10")

    async def scenario(confdir: Path, site: Path, fake: FakeAsterisk, ami: deploy.AmiOps,
                       said: list[str]) -> Any:
        prev = confdir / ".switchboard" / "previous"
        before = {p: p.read_bytes() for p in prev.rglob("*") if p.is_file()}
        live = {p: p.read_bytes() for p in confdir.rglob("*.conf")}
        for wrong in (deploy.AmiOps(ami.host, ami.port, "ops", "wrong-secret", timeout_s=5),
                      deploy.AmiOps(ami.host, free_port(), "ops", SECRET, timeout_s=2)):
            with pytest.raises(deploy.DeployError, match="nothing written"):
                await deploy.deploy(edited, confdir, wrong, dry_run=False, database_url=db_url,
                                    site_dir=site, say=said.append)
        after = {p: p.read_bytes() for p in prev.rglob("*") if p.is_file()}
        return before == after and bool(before), live == {
            p: p.read_bytes() for p in confdir.rglob("*.conf")}, await audit_rows(db_url)
    (kept, unchanged, rows), _ = run(tmp_path, scenario)
    assert kept and unchanged
    assert rows == [("dialplan-deploy", "refused"), ("dialplan-deploy", "refused")]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another owner needs root")
def test_deploy_and_rollback_keep_each_files_owner_group_and_mode(tmp_path: Path) -> None:
    edited = edited_copy(tmp_path, "queues.conf", "wrapuptime = 15", "wrapuptime = 10")

    async def scenario(confdir: Path, site: Path, fake: FakeAsterisk, ami: deploy.AmiOps,
                       said: list[str]) -> Any:
        target = confdir / "queues.conf"
        os.chown(target, 65534, 65534)  # nobody:nogroup, as an Asterisk user of its own
        target.chmod(0o640)
        await deploy.deploy(edited, confdir, ami, dry_run=False, database_url=None,
                            site_dir=site, say=said.append)
        st1 = target.stat()
        await deploy.rollback(confdir, ami, dry_run=False, database_url=None, say=said.append)
        st2 = target.stat()
        return [(s.st_uid, s.st_gid, s.st_mode & 0o7777) for s in (st1, st2)], \
            target.read_text()
    (stats, text), _ = run(tmp_path, scenario)
    assert stats == [(65534, 65534, 0o640)] * 2
    assert "wrapuptime = 15" in text


def test_dry_run_touches_nothing_and_a_failed_check_refuses(tmp_path: Path) -> None:
    broken = edited_copy(tmp_path, "extensions.conf", "Queue(overflow,", "Queue(overfow,")

    async def scenario(confdir: Path, site: Path, fake: FakeAsterisk, ami: deploy.AmiOps,
                       said: list[str]) -> Any:
        status = await deploy.deploy(DIALPLAN_DIR, confdir, ami, dry_run=True,
                                     database_url=None, site_dir=site, say=said.append)
        with pytest.raises(deploy.DeployError, match="dialplan check failed"):
            await deploy.deploy(broken, confdir, ami, dry_run=False, database_url=None,
                                site_dir=site, say=said.append)
        return status, sorted(p.name for p in confdir.iterdir()), said
    (status, files, said), stats = run(tmp_path, scenario, installed=False)
    assert status == 0 and files == []
    assert stats.connections == 0  # no AMI session at all
    assert "dry run: nothing written, nothing reloaded" in said
    actions = next(x for x in said if x.startswith("actions: "))
    for action in ("dialplan reload", "module reload res_pjsip.so", "queue reload all",
                   "manager reload", "(restart for modules.conf)"):
        assert action in actions
    assert any(x.startswith("extensions.conf:") and "SB-QUEUE" in x for x in said)


def test_cli_dry_run_and_a_missing_ops_secret(tmp_path: Path) -> None:
    import subprocess
    import sys
    cli = Path(sys.executable).parent / "switchboard"
    confdir = tmp_path / "etc-asterisk"
    confdir.mkdir()
    site = site_source(tmp_path)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/tmp",
           "SB_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "SB_SITE_DIR": str(site)}
    dry = subprocess.run([str(cli), "dialplan", "deploy", "--confdir", str(confdir),
                          "--dry-run"], env=env, capture_output=True, text=True, timeout=120,
                         check=False)
    assert dry.returncode == 0, dry.stderr
    assert "extensions.conf: +" in dry.stdout and "site/dids.conf: +" in dry.stdout
    assert "dry run" in dry.stdout
    assert sorted(p.name for p in confdir.iterdir()) == []
    real = subprocess.run([str(cli), "dialplan", "deploy", "--confdir", str(confdir)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert real.returncode == 2 and "SB_AMI_OPS_SECRET_FILE" in real.stderr  # a setting
    nosite = subprocess.run([str(cli), "dialplan", "deploy", "--confdir", str(confdir),
                             "--dry-run", "--site", str(tmp_path / "missing")], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert nosite.returncode == 1 and "no site files at" in nosite.stderr


def test_deploy_refuses_an_include_of_a_file_missing_on_the_node(tmp_path: Path) -> None:
    """A secrets file the site #includes from outside the configuration must exist
    on the node: Asterisk would otherwise ignore the whole including file."""
    async def scenario(confdir: Path, site: Path, fake: FakeAsterisk, ami: deploy.AmiOps,
                       said: list[str]) -> Any:
        (tmp_path / "secrets" / "phones.conf").unlink()
        with pytest.raises(deploy.DeployError, match="dialplan check failed"):
            await deploy.deploy(DIALPLAN_DIR, confdir, ami, dry_run=True, database_url=None,
                                site_dir=site, say=said.append)
        return said
    said, _ = run(tmp_path, scenario)
    assert any(x.startswith("site/phones.conf:") and "SB-CONF" in x and
               "no such file on this node; Asterisk would ignore all of pjsip.conf" in x
               for x in said), said


def test_confirm_reads_a_node_with_hundreds_of_phones(tmp_path: Path) -> None:
    """``pjsip show endpoints`` on a node with 600 phones answers more lines than
    an event may have (512): the ops session reads the whole output (it was cut
    at 512 lines, and confirm then said phones and the carrier were missing)."""
    confdir = tmp_path / "etc-asterisk"
    confdir.mkdir()
    site = site_source(tmp_path)
    (site / "phones.conf").write_text("".join(
        f"[{n}](sb-phone,loc-hq-3)\nauth = {n}-auth\naors = {n}\n\n[{n}](sb-phone-aor)\n\n"
        f"[{n}-auth](sb-phone-auth)\nusername = {n}\n#include \"{tmp_path}/secrets/"
        f"phones.conf\"\n\n" for n in range(4001, 4601)))
    first_install(confdir, site)
    fake = FakeAsterisk(confdir).start()
    assert len(fake.endpoints) > 600

    async def confirm_it() -> list[str]:
        server = ReplayServer([], ServerOptions(username="ops", secret=SECRET, command=fake,
                                                resync_first=False))
        port = await server.start()
        try:
            out: list[str] = []
            await deploy.confirm(confdir, deploy.AmiOps("127.0.0.1", port, "ops", SECRET),
                                 database_url=None, say=out.append)
            return out
        finally:
            await server.close()
    out = asyncio.run(confirm_it())
    assert any("confirmed:" in x and "60" in x for x in out), out
