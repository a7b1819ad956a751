"""The project installed as users get it: a wheel (and a wheel built from the
sdist) in a fresh virtual environment, run from a directory that is not the
checkout, configured from the documented file."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.helpers import db_env

ROOT = Path(__file__).resolve().parents[1]
PIP = [sys.executable, "-m", "pip"]


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True,
                          check=check, timeout=600)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist, and a wheel built from it (so the sdist is complete too)."""
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--sdist", "--outdir", str(out), str(ROOT), cwd=out)
    [sdist] = out.glob("*.tar.gz")
    _run(*PIP, "wheel", "--no-deps", "-q", "-w", str(out), str(sdist), cwd=out)
    [wheel] = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


def test_the_wheel_carries_sql_dialplan_and_captures(artifacts: dict[str, Path]) -> None:
    names = zipfile.ZipFile(artifacts["wheel"]).namelist()
    for needed in ("switchboard/sql/migrations/0001_ami_events.sql",
                   "switchboard/sql/queries/agi.sql", "switchboard/sql/seed/demo.sql",
                   "switchboard/sql/kpi.md", "switchboard/dialplan/extensions.conf",
                   "switchboard/dialplan/site.example/trunk.conf",
                   "switchboard/dialplan/lint/sounds-en-core.txt",
                   "switchboard/dialplan/edge/nftables.nft",
                   "switchboard/dialplan/edge/fail2ban/jail.local",
                   "switchboard/dialplan/edge/fail2ban/filter.d/switchboard-asterisk.conf",
                   "switchboard/dialplan/edge/fail2ban/action.d/switchboard-nftables.conf",
                   "switchboard/dialplan/edge/prometheus/switchboard-edge.rules.yml",
                   "switchboard/captures/security/security.log",
                   "switchboard/captures/ami/a_answered_ts.ami", "switchboard/web/static/panel.js"):
        assert needed in names, needed
    # the frame parser's fast path, compiled from the sdist's .pyx (issue 15)
    assert any(n.startswith("switchboard/ami_listener/_fastframe.") and n.endswith(".so")
               for n in names)
    assert "switchboard/ami_listener/_fastframe.pyi" in names
    with tarfile.open(artifacts["sdist"]) as sdist:
        assert "switchboard/ami_listener/_fastframe.pyx" in {
            n.split("/", 1)[-1] for n in sdist.getnames()}
    migrations = {p.name for p in (ROOT / "sql" / "migrations").glob("*.sql")}
    for kind in ("functions", "views"):
        files = {p.name for p in (ROOT / "sql" / kind).glob("*.sql")}
        assert files and {n.rsplit("/", 1)[1] for n in names
                          if n.startswith(f"switchboard/sql/{kind}/")} == files
    assert {n.rsplit("/", 1)[1] for n in names
            if n.startswith("switchboard/sql/migrations/")} == migrations


def test_the_wheel_adds_one_import_name(artifacts: dict[str, Path]) -> None:
    """Issue 25: an installed switchboard adds exactly one top-level name, its
    own; the rooms are its subpackages and the data is inside it."""
    names = zipfile.ZipFile(artifacts["wheel"]).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"switchboard", "switchboard-0.1.0.dist-info"}, tops
    top_level = next((n for n in names if n.endswith(".dist-info/top_level.txt")), None)
    if top_level is not None:
        text = zipfile.ZipFile(artifacts["wheel"]).read(top_level).decode().split()
        assert text == ["switchboard"], text
    for room in ("agi", "ami_listener", "admin", "figures", "dialplan_tools", "web", "console"):
        assert f"switchboard/{room}/__init__.py" in names, room


def test_installed_wheel_runs_from_any_directory_with_the_config_file(
        artifacts: dict[str, Path], db_url: str, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", str(venv), cwd=tmp_path)
    _run(*PIP, "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps",
         str(artifacts["wheel"]), cwd=tmp_path)
    # the dependencies from this environment, not the checkout's code
    purelib = sysconfig.get_paths()["purelib"]
    site = next((venv / "lib").glob("python3*/site-packages"))
    # the install added one name to site-packages (and its metadata)
    assert {p.name for p in site.iterdir()} == {"switchboard", "switchboard-0.1.0.dist-info"}
    (site / "deps.pth").write_text(purelib + "\n")
    elsewhere = tmp_path / "somewhere"
    elsewhere.mkdir()
    conf = tmp_path / "switchboard.env"
    owner = {k: v for k, v in db_env(db_url).items()}
    conf.write_text("# switchboard settings\n" + "".join(
        f'{k}="{v}"\n' for k, v in owner.items()) + "export SB_LOG_FORMAT=json\n")
    conf.chmod(0o640)
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path),
           "SB_CONFIG": str(conf)}
    sb = str(venv / "bin" / "switchboard")

    where = _run(str(venv / "bin" / "python"), "-c",
                 "import switchboard, switchboard.resources as r; "
                 "print(switchboard.__file__); print(r.data_dir('sql'))",
                 cwd=elsewhere, env=env).stdout.split()
    assert all(str(venv) in w for w in where), where
    parser = _run(str(venv / "bin" / "python"), "-c",
                  "import switchboard.ami_listener.framing as f; print(f.parser_name())",
                  cwd=elsewhere, env=env).stdout.strip()
    assert parser == "c"
    assert _run(sb, "--help", cwd=elsewhere, env=env).returncode == 0
    checked = _run(sb, "dialplan", "check", cwd=elsewhere, env=env, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    example = site / "switchboard" / "dialplan" / "site.example"
    nft = _run(sb, "edge", "show", "nft", "--site", str(example), cwd=elsewhere, env=env)
    assert "table inet switchboard {" in nft.stdout
    migrated = _run(sb, "db", "migrate", cwd=elsewhere, env=env, check=False)
    assert migrated.returncode == 0, migrated.stderr
    added = _run(sb, "agency", "add", "77", "Packaged Test Agency (FAKE)", cwd=elsewhere,
                 env=env, check=False)
    assert added.returncode == 0, added.stderr
    listed = _run(sb, "agency", "list", cwd=elsewhere, env=env)
    assert "Packaged Test Agency (FAKE)" in listed.stdout
    # the environment wins over the file; a file others may change is refused
    wrong = _run(sb, "agency", "list", cwd=elsewhere, check=False,
                 env={**env, "SB_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert wrong.returncode == 1
    conf.chmod(0o666)
    loose = _run(sb, "agency", "list", cwd=elsewhere, env=env, check=False)
    assert loose.returncode == 2 and "may be changed by others" in loose.stderr
    assert not (elsewhere / ".local").exists()  # nothing relative to the working directory
    assert os.listdir(elsewhere) == []
