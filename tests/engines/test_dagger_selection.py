"""select_engine against real PATH directories holding real executables."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.engines.selection import EngineChoice, select_engine
from conveyor.errors import ConfigError, EngineUnavailableError


def path_with(tmp_path: Path, *tools: str) -> str:
    """A PATH directory holding an executable script for each of ``tools``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in tools:
        script = bin_dir / tool
        script.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
        script.chmod(0o755)
    return str(bin_dir)


def test_auto_picks_dagger_with_its_cli_and_a_runtime(tmp_path: Path) -> None:
    path = path_with(tmp_path, "dagger", "podman")

    choice = select_engine("auto", {"PATH": path})

    assert choice == EngineChoice(
        "dagger",
        f"dagger CLI at {path}/dagger and a container runtime ({path}/podman)",
        Path(path) / "dagger",
    )


def test_auto_picks_dagger_inside_a_dagger_session_without_a_cli(tmp_path: Path) -> None:
    choice = select_engine("auto", {"PATH": path_with(tmp_path), "DAGGER_SESSION_PORT": "40123"})

    assert choice.name == "dagger"
    assert choice.reason == "running inside a Dagger session (DAGGER_SESSION_PORT is set)"
    assert choice.cli is None


def test_auto_picks_dagger_with_a_remote_engine_and_no_runtime(tmp_path: Path) -> None:
    env = {
        "PATH": path_with(tmp_path, "dagger"),
        "_EXPERIMENTAL_DAGGER_RUNNER_HOST": "tcp://engine.internal:8080",
    }

    choice = select_engine("auto", env)

    assert choice.name == "dagger"
    assert "remote engine" in choice.reason


def test_auto_falls_back_to_podman_without_a_dagger_cli(tmp_path: Path) -> None:
    choice = select_engine("auto", {"PATH": path_with(tmp_path, "podman", "docker")})

    assert choice == EngineChoice(
        "podman", "Dagger cannot run here (no 'dagger' CLI on PATH); using Podman"
    )


def test_auto_falls_back_to_podman_when_dagger_has_no_runtime(tmp_path: Path) -> None:
    path = path_with(tmp_path, "dagger")

    choice = select_engine("auto", {"PATH": path})

    assert choice.name == "podman"
    assert f"the dagger CLI at {path}/dagger has no container runtime" in choice.reason


def test_a_file_that_is_not_executable_is_not_a_cli(tmp_path: Path) -> None:
    path = path_with(tmp_path, "podman")
    (Path(path) / "dagger").write_text("not a program", encoding="utf-8")

    assert select_engine("auto", {"PATH": path}).name == "podman"


def test_engine_dagger_without_its_cli_names_what_is_missing_and_how_to_install(
    tmp_path: Path,
) -> None:
    with pytest.raises(EngineUnavailableError) as caught:
        select_engine("dagger", {"PATH": path_with(tmp_path, "podman")})

    assert caught.value.engine == "dagger"
    assert caught.value.reason == "no 'dagger' CLI on PATH"
    assert caught.value.hint is not None
    assert "https://docs.dagger.io/install" in caught.value.hint
    assert "--engine podman" in caught.value.hint


def test_engine_dagger_without_a_runtime_asks_for_docker_or_podman(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailableError) as caught:
        select_engine("dagger", {"PATH": path_with(tmp_path, "dagger")})

    assert caught.value.hint is not None
    assert "install Docker or Podman" in caught.value.hint


def test_engine_dagger_when_it_can_run_says_so(tmp_path: Path) -> None:
    path = path_with(tmp_path, "dagger", "docker")

    choice = select_engine("dagger", {"PATH": path})

    assert choice.name == "dagger"
    assert choice.reason.startswith("asked for with --engine dagger; dagger CLI at ")
    assert choice.cli == Path(path) / "dagger"


def test_engine_podman_is_taken_as_asked(tmp_path: Path) -> None:
    choice = select_engine("podman", {"PATH": path_with(tmp_path, "dagger", "docker")})

    assert choice == EngineChoice("podman", "asked for with --engine podman")


def test_an_unknown_engine_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match=r"--engine: 'docker' is not an engine") as caught:
        select_engine("docker", {})

    assert caught.value.hint == "use one of dagger, podman, auto"
