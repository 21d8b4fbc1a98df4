"""``conveyor init`` on small realistic repositories: the exact stages, services, images.

Each repository is real (files and git in a temporary directory), init runs
on it through the public functions, and every generated conveyor.toml is
read back with the configuration loader the pipeline uses.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ci.rules import actionlint, zizmor
from conveyor.config.loader import load_config
from conveyor.config.models import Config
from conveyor.scaffold import inspect_repository, plan, scaffold
from conveyor.scaffold.compose import SECRET_PLACEHOLDER

from .conftest import GitRepo

BACKEND_COMPOSE = """\
services:
  api:
    build:
      context: .
      dockerfile: backend/Dockerfile
    ports: ["8000:8000"]
    environment:
      DATABASE_URL: postgresql://app:s3cret-compose@db:5432/app
      REDIS_URL: redis://cache:6379/0
      SECRET_KEY: dev-only-key-123
      LOG_LEVEL: ${LOG_LEVEL:-info}
      HOST_ONLY:
    depends_on: [db, cache]
  db:
    image: postgres:16.4
    environment:
      - POSTGRES_USER=app
      - POSTGRES_PASSWORD=s3cret-compose
      - POSTGRES_DB=app
    ports: ["127.0.0.1:15432:5432"]
  cache:
    image: redis:7.4-alpine
  mail:
    image: mailhog/mailhog
    ports: ["8025:8025"]
"""
BACKEND_PYPROJECT = """\
[project]
name = "api"
version = "1.0"
requires-python = ">=3.14"
dependencies = ["fastapi"]

[project.optional-dependencies]
dev = ["pytest", "ruff==0.8.4"]

[tool.ruff]
line-length = 100

[tool.mypy]
strict = true
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  template:
    spec:
      containers:
        - name: api
          image: ghcr.io/acme/api:1.0.0
"""
PYTHON_REPO = {
    "compose.yaml": BACKEND_COMPOSE,
    "backend/Dockerfile": "FROM python:3.14-slim\nCOPY backend /app\nEXPOSE 8000\n",
    "backend/pyproject.toml": BACKEND_PYPROJECT,
    "backend/app.py": 'app = object()\n@route("/healthz")\ndef healthz(): ...\n',
    "backend/tests/test_app.py": "def test_app(): pass\n",
    "backend/tests/integration/test_db.py": "def test_db(): pass\n",
    "deploy/base/kustomization.yaml": "resources:\n  - deployment.yaml\n",
    "deploy/base/deployment.yaml": DEPLOYMENT,
}


CONVEYOR = Path(sys.executable).with_name("conveyor")


def load(path: Path) -> Config:
    return load_config(path, env={})


def comments(text: str) -> str:
    """The comments of a generated file as one line (they are wrapped at 96 columns)."""
    return " ".join(
        line.strip().removeprefix("#").strip() for line in text.splitlines() if "#" in line
    )


def test_python_repository_with_compose_and_postgres(git_repo: GitRepo) -> None:
    repo = git_repo(PYTHON_REPO, origin="git@github.com:acme/shop.git")
    written = scaffold(repo / "backend", "github")
    text = written[0].content
    config = load(repo / "backend" / "conveyor.toml")

    # the app as compose builds it: the repository root as the context, not backend/
    assert config.app.name == "api"
    assert config.resolve(config.app.context) == repo
    assert config.app.dockerfile == "backend/Dockerfile"
    # requires-python >= 3.14: the lowest image it allows
    assert config.stages.test is not None
    assert config.stages.test.image == "python:3.14-slim"
    assert config.stages.test.junit == "junit.xml"
    # the unit tests leave tests/integration to the stage that has its services
    assert config.stages.test.command[-1] == (
        "python -m pip install --quiet pytest && python -m pip install --quiet . "
        "&& python -m pytest -q --ignore=tests/integration --junitxml=junit.xml"
    )
    assert "# tests/integration runs in [stages.integration], beside the services it needs\n" in (
        text
    )

    custom = config.stages.custom
    assert list(custom) == ["ruff", "mypy", "integration"]
    assert custom["ruff"].image == "ghcr.io/astral-sh/ruff:0.8.4-alpine"  # the pinned version
    assert custom["ruff"].argv == ("ruff", "check", ".")
    assert custom["mypy"].image == "python:3.14-slim"
    assert custom["mypy"].argv == (
        "sh",
        "-c",
        "python -m pip install --quiet mypy==2.4.1 && python -m pip install --quiet . "
        "&& python -m mypy .",
    )

    assert [stage.description for stage in custom.values()] == [
        "lint: ruff check",
        "type check: mypy",
        "integration tests beside db, cache",
    ]
    integration = custom["integration"]
    assert integration.gate  # publish waits for it
    assert integration.image == "python:3.14-slim"
    assert integration.script == (
        "python -m pip install --quiet pytest && python -m pip install --quiet . "
        "&& python -m pytest -q tests/integration --junitxml=integration.xml"
    )
    assert integration.junit == "integration.xml"
    assert integration.env == {
        "DATABASE_URL": f"postgresql://app:{SECRET_PLACEHOLDER}@db:5432/app",
        "REDIS_URL": "redis://cache:6379/0",
        "SECRET_KEY": SECRET_PLACEHOLDER,
        "LOG_LEVEL": "info",
    }
    assert [(s.name, s.image, s.port, s.env) for s in integration.services] == [
        (
            "db",
            "postgres:16.4",
            5432,
            {"POSTGRES_USER": "app", "POSTGRES_PASSWORD": SECRET_PLACEHOLDER, "POSTGRES_DB": "app"},
        ),
        ("cache", "redis:7.4-alpine", 6379, {}),
    ]
    # no value that looked like a secret reached the committed file
    assert "s3cret-compose" not in text
    assert "dev-only-key-123" not in text
    assert (
        "  # POSTGRES_PASSWORD: compose's value is not copied (it looks like a secret);\n"
        "  # 'conveyor-test-only' is a throwaway value for this test service\n"
        '  { name = "db", image = "postgres:16.4", port = 5432, env = '
        '{ POSTGRES_USER = "app", POSTGRES_PASSWORD = "conveyor-test-only", POSTGRES_DB = "app" }'
        " },\n"
    ) in text
    assert "# HOST_ONLY: compose passes it from the host's environment; not copied\n" in text
    # the unpinned service is left out, with what to add
    assert (
        "# mail (mailhog/mailhog) is left out: its image has no pinned tag and Conveyor refuses "
        'mutable\n# ones; add { name = "mail", image = "mailhog/mailhog:<version>", '
        "port = 8025 }\n"
    ) in text
    assert written[0].todos[-1] == (
        "add the services of compose.yaml left out of stages.integration (mail): the comments "
        "there say why"
    )

    # the smoke contract the app can meet: its port, its health route, the status alone
    smoke = config.stages.smoke
    assert (smoke.port, smoke.path, smoke.prove_version) == (8000, "/healthz", False)
    assert "# port 8000: EXPOSE in Dockerfile\n" in text  # beside conveyor.toml
    assert '# version is body_contains = "{sha}" (the body holds the commit) or\n' in text

    # the manifests' image name, read from the kustomize base in the repository
    assert config.gitops is not None
    for env in config.gitops.environments.values():
        assert env.image_name == "ghcr.io/acme/api"
    assert "the tag): Conveyor pins the kustomization images: entry of that name; deploy/base" in (
        text
    )

    # run records stay out of git and out of the root build context (below it: **/)
    assert (repo / ".gitignore").read_text().endswith("\n.conveyor/\n")
    assert (repo / ".dockerignore").read_text().endswith("\n**/.conveyor/\n")
    assert not (repo / "backend" / ".dockerignore").exists()


def test_the_workflow_for_that_repository_passes_actionlint_and_zizmor(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    repo = git_repo(PYTHON_REPO, origin="https://github.com/acme/shop.git")
    commit = "0123456789abcdef0123456789abcdef01234567"
    _, caller = plan(inspect_repository(repo / "backend"), "github", release_commit=commit)
    target = tmp_path / "lint" / ".github" / "workflows" / "conveyor.yml"
    target.parent.mkdir(parents=True)
    target.write_text(caller.content, "utf-8")
    assert 'config: "backend/conveyor.toml"\n' in caller.content
    linted = actionlint([target])
    assert linted.returncode == 0, linted.stdout + linted.stderr
    audited = zizmor([target])
    assert audited.returncode == 0, audited.stdout + audited.stderr


NODE_SERVER = """\
const http = require("http");
http.createServer((req, res) => {
  if (req.url === "/version") {
    res.end(JSON.stringify({ version: process.env.GIT_SHA }));
  }
}).listen(3000);
"""


def node_repo(lock: str) -> dict[str, str]:
    return {
        "Dockerfile": "FROM node:22-slim\nARG GIT_SHA\nENV GIT_SHA=$GIT_SHA\nEXPOSE 3000\n",
        "package.json": json.dumps(
            {"name": "web", "scripts": {"test": "jest", "lint": "eslint ."}}
        ),
        lock: "",
        "eslint.config.mjs": "export default [];\n",
        "server.js": NODE_SERVER,
    }


def test_node_yarn_repository_with_eslint(git_repo: GitRepo) -> None:
    repo = git_repo(node_repo("yarn.lock"), name="web")
    text = scaffold(repo, "gitlab")[0].content
    config = load(repo / "conveyor.toml")
    assert config.stages.test is not None
    assert config.stages.test.image == "node:22-slim"
    assert config.stages.test.command == ["sh", "-c", "yarn install --frozen-lockfile && yarn test"]
    # npm test (here jest) writes no JUnit report: none is expected
    assert config.stages.test.junit == ""
    assert "# npm test writes no JUnit report" not in text
    assert "# yarn test writes no JUnit report: name the file here when your test runner" in text
    eslint = config.stages.custom["eslint"]
    assert list(config.stages.custom) == ["eslint"]
    assert eslint.image == "node:22-slim"
    assert eslint.script == "yarn install --frozen-lockfile && yarn lint"
    assert "# Detected: eslint (eslint.config.mjs, the package.json script lint)\n" in text
    # /version and GIT_SHA in the source: the default contract proves the commit
    smoke = config.stages.smoke
    assert (smoke.port, smoke.path, smoke.prove_version) == (3000, "/version", True)
    assert "\nprove_version" not in text.split("[stages.smoke]")[1].split("[stages.manifest]")[0]


def test_pnpm_installs_with_its_frozen_lock_file(git_repo: GitRepo) -> None:
    repo = git_repo(node_repo("pnpm-lock.yaml"), name="web")
    scaffold(repo, "github")
    config = load(repo / "conveyor.toml")
    assert config.stages.test is not None
    assert config.stages.test.command[-1] == (
        "corepack enable && pnpm install --frozen-lockfile && pnpm test"
    )
    assert config.stages.custom["eslint"].script == (
        "corepack enable && pnpm install --frozen-lockfile && pnpm lint"
    )


GO_MAIN = """\
package main

import "net/http"

func main() {
	http.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"version":"6.7.0"}`))
	})
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {})
	http.ListenAndServe(":9898", nil)
}
"""


def test_go_repository_with_golangci(git_repo: GitRepo) -> None:
    repo = git_repo(
        {
            "Dockerfile": "FROM golang:1.23 AS build\nFROM scratch\nEXPOSE 9898/tcp\n",
            "go.mod": "module example.com/podinfo\n\ngo 1.23\n",
            "main.go": GO_MAIN,
            ".golangci.yml": 'version: "2"\nlinters:\n  default: standard\n',
        },
        name="podinfo",
    )
    text = scaffold(repo, "github")[0].content
    config = load(repo / "conveyor.toml")
    assert config.stages.test is not None
    assert config.stages.test.image == "golang:1.23"
    # go test writes no JUnit report; gotestsum runs it and writes one
    assert config.stages.test.command == [
        "go",
        "run",
        "gotest.tools/gotestsum@v1.13.0",
        "--junitfile",
        "junit.xml",
        "--",
        "./...",
    ]
    assert config.stages.test.junit == "junit.xml"
    lint = config.stages.custom["golangci-lint"]
    assert list(config.stages.custom) == ["golangci-lint"]
    assert lint.image == "golangci/golangci-lint:v2.15.0"
    assert lint.argv == ("golangci-lint", "run", "./...")
    # its own /version shows its own version, not the commit: the status alone passes
    smoke = config.stages.smoke
    assert (smoke.port, smoke.path, smoke.prove_version) == (9898, "/healthz", False)
    assert (
        "# This app serves /version but does not read GIT_SHA: its answer cannot show this commit,"
    ) in text
    # no kustomize base here: say where the name must come from
    assert config.gitops is not None
    assert config.gitops.environments["staging"].image_name is None
    assert "no kustomize base was found in this repository, so check the one in the" in (
        comments(text)
    )


def test_a_v1_golangci_configuration_gets_the_last_v1_release(git_repo: GitRepo) -> None:
    repo = git_repo(
        {"Dockerfile": "FROM scratch\n", "go.mod": "module x\n", ".golangci.yaml": "run: {}\n"},
    )
    scaffold(repo, "github")
    lint = load(repo / "conveyor.toml").stages.custom["golangci-lint"]
    assert lint.image == "golangci/golangci-lint:v1.64.8"


MONOREPO_BASE = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop}
spec:
  template:
    spec:
      initContainers:
        - {name: migrate, image: "ghcr.io/acme/api:0.9"}
      containers:
        - {name: api, image: "ghcr.io/acme/api:0.9"}
        - name: web
          image: "ghcr.io/acme/web@sha256:\
0000000000000000000000000000000000000000000000000000000000000000"
"""


def test_several_dockerfiles_become_images(git_repo: GitRepo) -> None:
    repo = git_repo(
        {
            "services/api/Dockerfile": "FROM scratch\nEXPOSE 8080\n",
            "services/web/Dockerfile": "FROM scratch\nEXPOSE 3000\n",
            "services/web/node_modules/x/Dockerfile": "FROM scratch\n",  # a dependency's
            ".devcontainer/Dockerfile": "FROM scratch\n",  # tooling, not an image
            "services/api/tests/fixtures/Dockerfile": "FROM scratch\n",
            "k8s/kustomization.yaml": "resources: [deployment.yaml]\n",
            "k8s/deployment.yaml": MONOREPO_BASE,
        },
        name="shop",
    )
    text = scaffold(repo, "github")[0].content
    config = load(repo / "conveyor.toml")
    assert config.app.name == "shop"
    assert "dockerfile" not in config.app.model_fields_set
    specs = {spec.name: spec for spec in config.image_specs()}
    assert list(specs) == ["api", "web"]
    assert [(s.context, s.dockerfile, s.paths, s.repository) for s in specs.values()] == [
        (Path("services/api"), "Dockerfile", ("services/api",), "shop/api"),
        (Path("services/web"), "Dockerfile", ("services/web",), "shop/web"),
    ]
    # the names the base Deployment uses, matched by the image's name
    assert specs["api"].image_name("staging") == "ghcr.io/acme/api"
    assert specs["web"].image_name("production") == "ghcr.io/acme/web"
    # the smoke stage probes one port: the image serving another is not smoke-tested
    assert config.stages.smoke.port == 8080
    assert (specs["api"].smoke, specs["web"].smoke) == (True, False)
    assert "# the smoke stage probes port 8080; this image has port 3000, so it is not" in text
    # run records (.conveyor/ beside conveyor.toml) are in neither context: nothing to ignore
    assert (repo / ".gitignore").read_text().endswith("\n.conveyor/\n")
    assert not list(repo.rglob(".dockerignore"))


def test_compose_with_two_builds_gives_images_with_their_contexts(git_repo: GitRepo) -> None:
    compose = """\
services:
  api:
    build:
      context: .
      dockerfile: api/Dockerfile
      target: runtime
      args: {PIP_INDEX: "https://pypi.example/simple", API_TOKEN: "x1"}
  worker:
    build: worker
"""
    repo = git_repo(
        {
            "docker-compose.yml": compose,
            "api/Dockerfile": "FROM scratch\n",
            "worker/Dockerfile": "FROM scratch\n",
        },
        name="jobs",
    )
    scaffold(repo, "github")
    config = load(repo / "conveyor.toml")
    assert "integration" not in config.stages.custom  # no service to run beside the tests
    assert [
        (s.name, s.context, s.dockerfile, s.target, dict(s.build_args), s.paths)
        for s in config.image_specs()
    ] == [
        (
            "api",
            Path("."),
            "api/Dockerfile",
            "runtime",
            {"PIP_INDEX": "https://pypi.example/simple"},
            ("api",),
        ),
        ("worker", Path("worker"), "Dockerfile", None, {}, ("worker",)),
    ]


def test_the_proposed_stages_gate_publish_in_the_real_graph(git_repo: GitRepo) -> None:
    repo = git_repo(PYTHON_REPO)
    scaffold(repo / "backend", "github")
    done = subprocess.run(
        [str(CONVEYOR), "graph", "--config", "backend/conveyor.toml", "--format", "json"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    stages = {stage["name"]: stage for stage in json.loads(done.stdout)["stages"]}
    # nothing is published before the lint and integration stages passed
    assert {"ruff", "mypy", "integration"} <= set(stages["publish"]["needs"])
    assert stages["integration"]["services"] == ["db: postgres:16.4", "cache: redis:7.4-alpine"]


def test_init_on_the_monorepo_example_finds_what_its_author_wrote(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    """examples/monorepo, its conveyor.toml taken away: init proposes its images and names."""
    example = Path(__file__).resolve().parents[2] / "examples" / "monorepo"
    files = {
        p.relative_to(example).as_posix(): p.read_text("utf-8")
        for p in sorted(example.rglob("*"))
        if p.is_file() and p.name != "conveyor.toml" and "__pycache__" not in p.parts
    }
    repo = git_repo(files, name="shop")
    scaffold(repo, "github")
    proposed = load(repo / "conveyor.toml")
    written = load(example / "conveyor.toml")

    def images(config: Config) -> list[tuple[str, Path, str, tuple[str, ...], str, bool]]:
        return [
            (s.name, s.context, s.dockerfile, s.paths, s.image_name("staging"), s.smoke)
            for s in config.image_specs()
        ]

    assert images(proposed) == images(written)
    assert proposed.stages.smoke.port == written.stages.smoke.port == 8080
    # both apps serve /version and read GIT_SHA: the default contract, as the author has it
    assert (proposed.stages.smoke.path, proposed.stages.smoke.prove_version) == ("/version", True)
