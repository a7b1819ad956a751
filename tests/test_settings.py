from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.settings import ConfigError, load, parse_nodes


def test_defaults_are_sane() -> None:
    s = load({})
    assert s.database_url is None and s.pg_port == 54329
    assert s.listener.nodes == () and s.listener.metrics_host == "127.0.0.1"
    assert s.listener.batch_delay_s == 0.05


def test_nodes_with_shared_and_per_node_secrets(tmp_path: Path) -> None:
    secret = tmp_path / "b.secret"
    secret.write_text("from-file\n")
    secret.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):  # checked at start
        parse_nodes({"SB_AMI_NODES": "pbx-b@[::1]", "SB_AMI_SECRET_PBX_B_FILE": str(secret)})
    secret.chmod(0o640)
    nodes = parse_nodes({"SB_AMI_NODES": "pbx-a@127.0.0.1:5038, pbx-b@[::1]",
                         "SB_AMI_SECRET": "shared", "SB_AMI_SECRET_PBX_B_FILE": str(secret),
                         "SB_AMI_USER_PBX_B": "reader"})
    assert [(n.name, n.host, n.port, n.username, n.secret) for n in nodes] == [
        ("pbx-a", "127.0.0.1", 5038, "listener", "shared"),
        ("pbx-b", "::1", 5038, "reader", "from-file")]
    assert "shared" not in repr(nodes[0])  # secrets never appear in reprs or logs


@pytest.mark.parametrize(("env", "message"), [
    ({"SB_AMI_NODES": "pbx-a@127.0.0.1"}, "no AMI secret"),
    ({"SB_AMI_NODES": "127.0.0.1:5038", "SB_AMI_SECRET": "x"}, "name@host"),
    ({"SB_AMI_NODES": "a@h,a@h", "SB_AMI_SECRET": "x"}, "twice"),
    ({"SB_AMI_NODES": "bad name@h", "SB_AMI_SECRET": "x"}, "node name"),
    ({"SB_AMI_NODES": "a@h:99999", "SB_AMI_SECRET": "x"}, "out of range"),
    ({"SB_AMI_NODES": "a@h", "SB_AMI_SECRET_FILE": "/nonexistent"}, "cannot be read"),
    ({"SB_BATCH_MAX": "0"}, "SB_BATCH_MAX=0 is out of range"),
    ({"SB_PING_INTERVAL": "soon"}, "not a number"),
    ({"SB_LOG_FORMAT": "xml"}, "SB_LOG_FORMAT"),
])
def test_bad_configuration_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(env)
