"""The parts of the generated conveyor.toml that depend on what was found.

The build of the one image (``[app]``) or the ``[images.<name>]`` tables, the
lint and integration stages, the smoke contract and the image name the
manifests use, each as TOML text with comments that say where a value came
from and how to change it.
"""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.scaffold.compose import SECRET_PLACEHOLDER
from conveyor.scaffold.dockerfiles import ImageFacts
from conveyor.scaffold.proposal import (
    ProposedStage,
    array,
    comment_lines,
    inline_table,
    quote,
    stage_toml,
)
from conveyor.scaffold.repository import RepositoryFacts
from conveyor.scaffold.toolchains import GOTESTSUM_VERSION, node_tool, npm_scripts, python_install

DEFAULT_PORT = 8080
INTEGRATION_REPORT = "integration.xml"


def several(facts: RepositoryFacts) -> bool:
    """Whether the images are ``[images.<name>]`` tables rather than the ``[app]`` shorthand."""
    return len(facts.images) > 1


def app_build(facts: RepositoryFacts) -> str:
    """The ``[app]`` lines after ``name``: the one image's build, or a word on the tables."""
    if several(facts):
        found = ", ".join(image.found for image in facts.images)
        return (
            "# [app] keeps the name and the source; each [images.<name>] below describes one\n"
            f"# image (found: {found}).\n"
        )
    image = facts.images[0]
    lines = []
    if image.service is not None:
        lines.append(
            f"# Built as {image.found} builds it: the context and Dockerfile of its build: key."
        )
    if image.context != ".":
        lines.append(f"context = {quote(image.context)}")
    lines.append(f"dockerfile = {quote(image.dockerfile)}")
    lines += _build_extras(image)
    return "\n".join(lines) + "\n"


def _build_extras(image: ImageFacts) -> list[str]:
    lines = []
    if image.target:
        lines.append(f"target = {quote(image.target)}")
    if image.build_args:
        lines.append(f"build_args = {inline_table(image.build_args)}")
    return lines


@dataclass(frozen=True)
class Smoke:
    """The smoke stage: which port it probes, and which images it cannot probe there."""

    port: int
    port_note: str
    unprobed: frozenset[str]


def smoke_plan(facts: RepositoryFacts) -> Smoke:
    """The port the smoke stage probes, from the first image that exposes one."""
    exposing = [image for image in facts.images if image.port is not None]
    if not exposing:
        note = (
            f"port {DEFAULT_PORT} is a guess (no EXPOSE in the Dockerfile): set the port the "
            "app listens on"
        )
        return Smoke(DEFAULT_PORT, note, frozenset())
    first = exposing[0]
    assert first.port is not None  # chosen for it
    unprobed = frozenset(image.name for image in facts.images if image.port != first.port)
    return Smoke(first.port, f"port {first.port}: EXPOSE in {first.dockerfile_path}", unprobed)


def images_block(facts: RepositoryFacts, smoke: Smoke) -> str:
    """The ``[images.<name>]`` tables ("" for one image)."""
    if not several(facts):
        return ""
    parts = [
        "",
        "# Several images: each is built, scanned, smoke-tested and published under the SHA",
        "# tag (stages build-<name>, scan-<name>, smoke-<name>, publish-<name>); the manifest",
        "# stage pins them all in one commit. Each publishes to <registry.repository>/<name>.",
    ]
    for image in facts.images:
        parts += ["", f"[images.{image.name}]", f"# Found: {image.found}"]
        parts.append(f"context = {quote(image.context)}")
        parts.append(f"dockerfile = {quote(image.dockerfile)}")
        parts += _build_extras(image)
        if image.paths:
            parts.append(f"paths = {array(image.paths)}")
        name, note = image_name_for(facts, image.name)
        parts += [f"# {line}" for line in comment_lines(note)]
        if name is not None:
            parts.append(f"image_name = {quote(name)}")
        if image.name in smoke.unprobed:
            serves = f"port {image.port}" if image.port else "no EXPOSE"
            parts.append(
                f"# the smoke stage probes port {smoke.port}; this image has {serves}, so it is "
                "not smoke-tested"
            )
            parts.append("smoke = false")
    return "\n".join(parts) + "\n"


def image_name_for(facts: RepositoryFacts, name: str) -> tuple[str | None, str]:
    """The manifests' name for the image ``name`` from a kustomize base, and a comment on it."""
    rule = (
        "image_name must match the image name in the base Deployment (its containers[].image "
        "without the tag): Conveyor pins the kustomization images: entry of that name"
    )
    candidates = [(base.directory, n) for base in facts.bases for n in base.names]
    matching = [(d, n) for d, n in candidates if n.rsplit("/", 1)[-1] == name]
    if len(matching) == 1 or (len(matching) == 0 and len(candidates) == 1 and not several(facts)):
        directory, found = (matching or candidates)[0]
        return found, f"{rule}; {directory} names {found}"
    if candidates:
        every = sorted({n for _, n in candidates})
        names = ", ".join(every[:6]) + (f" and {len(every) - 6} more" if len(every) > 6 else "")
        return None, (
            f"{rule}; the kustomize bases here name {names}: set image_name to the one of "
            f"{name!r} (unset, the manifests must name it {name!r})"
        )
    return None, (
        f"{rule}; no kustomize base was found in this repository, so check the one in the "
        f"manifest repository (unset, the manifests must name it {name!r})"
    )


def environment_image_name(facts: RepositoryFacts) -> tuple[str, str]:
    """The ``image_name`` line of each environment and the comment above them ([app] only)."""
    if several(facts):
        return "", "# Each [images.<name>] above says the name the manifests use (image_name).\n"
    name, note = image_name_for(facts, facts.app_name)
    line = f"image_name = {quote(name)}\n" if name is not None else ""
    return line, "".join(f"# {part}\n" for part in comment_lines(note))


def smoke_block(facts: RepositoryFacts, smoke: Smoke) -> str:
    """``[stages.smoke]``: what it probes, and a contract the service can meet."""
    probed = [image for image in facts.images if image.name not in smoke.unprobed]
    proves = bool(probed) and all(i.smoke.serves_version and i.smoke.knows_sha for i in probed)
    health = next((i.smoke.health_path for i in probed if i.smoke.health_path), None)
    serves_version = any(i.smoke.serves_version for i in probed)
    # the route that answers best: /version when it proves the commit, else a health route
    path = "/version" if proves or (serves_version and not health) else health or "/"
    lines = [
        "[stages.smoke]",
        "# Before anything is published, the built image runs as a service and is probed at",
        f"# {path} on port {smoke.port} until it answers as the contract below says.",
        f"# {smoke.port_note}",
        f"port = {smoke.port}",
        f"path = {quote(path)}",
        "# The contract: status = 200 wants one exact status (unset: any 2xx); what proves the",
        '# version is body_contains = "{sha}" (the body holds the commit) or',
        '# json = { path = "version", equals = "{sha}" } (a JSON field equals it); the build',
        "# argument GIT_SHA carries the commit into the image. prove_version = false lets the",
        "# status alone pass.",
    ]
    if proves:
        lines.append(
            "# This app serves /version and reads GIT_SHA: without body_contains or json, the"
        )
        lines.append("# answer must hold the commit in a JSON 'version' field or in its body.")
    else:
        why = (
            "This app serves /version but does not read GIT_SHA: its answer cannot show this commit"
            if serves_version
            else "This app shows no /version route: nothing in its answers shows the commit"
        )
        lines += [
            f"# {line}"
            for line in comment_lines(
                f"{why}, so only the status is checked. Serve the commit and replace "
                "prove_version = false by body_contains or json."
            )
        ]
        lines.append("prove_version = false")
    return "\n".join(lines) + "\n"


def integration_stage(facts: RepositoryFacts) -> ProposedStage | None:
    """The ``integration`` stage: the tests beside the compose file's services."""
    compose = facts.compose
    if compose is None or not (compose.services or compose.left_out):
        return None
    services = ", ".join(s.name for s in compose.services) or "none usable"
    env: list[tuple[str, str]] = []
    notes = [
        f"the tests run beside the services of {compose.file}, each reachable by its name",
    ]
    app_services = {image.service for image in facts.images if image.service}
    for build in compose.builds:
        if build.service in app_services:
            env += [pair for pair in build.env if pair not in env]
            if build.env:
                notes.append(f"env: what {compose.file} gives the service {build.service}")
            notes += list(build.env_notes)
    if any(value.find(SECRET_PLACEHOLDER) >= 0 for _, value in env) or any(
        SECRET_PLACEHOLDER in value for s in compose.services for _, value in s.env
    ):
        notes.append(
            f"{SECRET_PLACEHOLDER!r} replaces every value that looked like a secret: this file "
            "is committed, so never put a real credential here"
        )
    image, command, junit = _integration_command(facts)
    return ProposedStage(
        name="integration",
        detected=f"services in {compose.file} ({services})",
        description=f"integration tests beside {services}",
        image=image,
        script=command,
        junit=junit,
        env=tuple(env),
        services=compose.services,
        notes=tuple(notes),
        left_out=compose.left_out,
    )


def _integration_command(facts: RepositoryFacts) -> tuple[str, str, str | None]:
    test = facts.test
    directory = facts.directory
    if test.detected == "pytest":
        target = " tests/integration" if (directory / "tests" / "integration").is_dir() else ""
        script = " && ".join(
            [
                *python_install(directory, "pytest"),
                f"python -m pytest -q{target} --junitxml={INTEGRATION_REPORT}",
            ]
        )
        return test.image, script, INTEGRATION_REPORT
    if test.detected.endswith(" test") and (directory / "package.json").is_file():
        tool = node_tool(directory)
        scripts = npm_scripts(directory / "package.json")
        run = tool.run("test:integration" if "test:integration" in scripts else "test")
        return test.image, f"{tool.install} && {run}", None
    if test.image.startswith("golang:"):
        script = (
            f"go run gotest.tools/gotestsum@{GOTESTSUM_VERSION} --junitfile {INTEGRATION_REPORT}"
            " -- ./..."
        )
        return test.image, script, INTEGRATION_REPORT
    return test.image, test.command[-1], None


def unit_test_command(facts: RepositoryFacts) -> tuple[tuple[str, ...], str | None]:
    """The test stage's command, and a note when tests/integration moved to its own stage.

    pytest would otherwise run the integration tests too, without the
    services they need.
    """
    command = facts.test.command
    integration = facts.directory / "tests" / "integration"
    if (
        facts.test.detected == "pytest"
        and integration.is_dir()
        and integration_stage(facts) is not None
    ):
        script = command[-1].replace(
            "python -m pytest -q ", "python -m pytest -q --ignore=tests/integration "
        )
        note = "tests/integration runs in [stages.integration], beside the services it needs"
        return (*command[:-1], script), note
    return command, None


def extra_stages(facts: RepositoryFacts) -> str:
    """The lint and integration stages, each preceded by a blank line ("" when none)."""
    stages = [*facts.lint]
    integration = integration_stage(facts)
    if integration is not None:
        stages.append(integration)
    return "".join("\n" + stage_toml(stage) for stage in stages)
