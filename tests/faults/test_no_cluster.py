"""CI never talks to a cluster: kubectl sees an empty kubeconfig, whatever the user's says.

A kubeconfig (``KUBECONFIG`` and ``~/.kube/config``) names a loopback TCP
listener as its API server.  kubectl on these machines is a dispatcher that
reads it and connects even for ``kubectl kustomize``; across a render,
``conveyor policy check``, ``conveyor manifest update`` and ``conveyor
doctor`` the listener must see zero connections.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli.app import app
from conveyor.gitops.renderer import render

pytestmark = pytest.mark.timeout(120)

RESOURCES = Path(__file__).resolve().parents[1] / "resources" / "manifests"
STAGING = "apps/hello/overlays/staging"
SHA = "0123abcd" * 5
REF = f"myacr.azurecr.io/hello:{SHA}@sha256:{'7' * 64}"
runner = CliRunner()


@dataclass
class ApiServer:
    """A TCP listener standing in for a cluster's API server: it counts connections."""

    port: int
    connections: int = 0


@pytest.fixture
def api_server() -> Iterator[ApiServer]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    server = ApiServer(listener.getsockname()[1])

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            server.connections += 1
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        listener.close()


@pytest.fixture
def kubeconfig(tmp_path: Path, api_server: ApiServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kubeconfig at the listener, where kubectl looks: KUBECONFIG and ~/.kube/config."""
    text = (
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{api_server.port}'}}}}]\n"
        "users: [{name: u, user: {token: not-a-secret}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "current-context: x\n"
    )
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text(text)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KUBECONFIG", str(home / ".kube" / "config"))
    return home / ".kube" / "config"


def test_the_listener_does_see_a_kubectl_that_reads_the_kubeconfig(
    kubeconfig: Path, api_server: ApiServer
) -> None:
    # the control: plain kubectl with this environment does connect
    subprocess.run(
        ["kubectl", "kustomize", str(RESOURCES / STAGING)], capture_output=True, check=True
    )
    if api_server.connections == 0:
        pytest.fail("this kubectl does not read the kubeconfig: the test proves nothing here")


def test_render_policy_check_manifest_update_and_doctor_open_no_connection(
    tmp_path: Path, kubeconfig: Path, api_server: ApiServer
) -> None:
    tree = tmp_path / "manifests"
    shutil.copytree(RESOURCES, tree)
    assert "myacr.azurecr.io/hello" in render(tree / STAGING)

    config = tmp_path / "conveyor.toml"
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=tree, check=True)
    subprocess.run(["git", "add", "-A"], cwd=tree, check=True)
    subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qm", "seed"],
        cwd=tree,
        check=True,
    )
    subprocess.run(["git", "clone", "-q", "--bare", str(tree), str(bare)], check=True)
    config.write_text(
        '[app]\nname = "hello"\n\n[registry]\nhost = "myacr.azurecr.io"\nrepository = "hello"\n\n'
        f'[gitops]\nrepo = "{bare}"\n\n'
        f'[gitops.environments.staging]\npath = "{STAGING}"\nimage_name = "hello"\n\n'
        "[policy]\nallowed_registries = ['^myacr\\.azurecr\\.io/.+$']\n"
    )
    checked = runner.invoke(app, ["policy", "check", str(tree), "--config", str(config)])
    assert checked.exit_code in (0, 4), checked.output  # the tree holds refused images too
    assert "apps/hello/overlays/staging" in checked.output
    updated = runner.invoke(app, ["manifest", "update", "staging", REF, "--config", str(config)])
    assert updated.exit_code == 0, updated.output
    assert "staging: pushed " in updated.output
    doctor = runner.invoke(app, ["doctor", "--config", str(config)], env={"COLUMNS": "200"})
    assert "kubectl" in doctor.output

    assert api_server.connections == 0
