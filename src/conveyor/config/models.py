"""The configuration schema: frozen pydantic models, unknown keys rejected.

The TOML layout mirrors these classes one to one; see the README's
configuration reference for every key with its default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from conveyor.config.duration import Duration
from conveyor.smoke.contract import Contract, template_problem

SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
Severity = Literal["UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = rf"^{_COMPONENT}(?:/{_COMPONENT})*$"
MESSAGE_FIELDS = ("environment", "app", "short_sha", "sha", "image")
"""What ``gitops.message`` may name (``{environment}`` ...)."""
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Model(BaseModel):
    # Booleans and integers are StrictBool/StrictInt: "yes" or "1" is not true, "8080" is
    # not a port (tests/config/test_strict_types.py walks the schema for plain ones).
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


# environments with these names are protected unless they say `protected = false`
PROTECTED_NAMES = frozenset({"production", "prod"})


def _inside_repository(path: str) -> str:
    """A path of the manifest repository: relative to its root, never leaving it."""
    parts = path.replace("\\", "/").split("/")
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path) or ".." in parts:
        raise ValueError(
            "must be a path inside the manifest repository, relative to its root "
            "(no leading '/', no '..')"
        )
    return path


def _not_an_option(value: str) -> str:
    if value.startswith("-"):
        raise ValueError("starts with '-': git or podman would read it as an option, not a value")
    return value


Argument = Annotated[str, AfterValidator(_not_an_option)]
"""A value that reaches a command line where ``--`` cannot guard it (an image, a branch)."""


def _check_env_keys(env: dict[str, str]) -> dict[str, str]:
    """An ``env`` table whose keys are all environment variable names."""
    _check_env_names(list(env))
    return env


def _check_env_names(names: list[str]) -> list[str]:
    for name in names:
        if not _ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not an environment variable name")
    return names


class AppConfig(Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    source: Path = Path(".")
    context: Path = Path(".")
    dockerfile: str = "Dockerfile"
    source_url: str | None = None
    build_args: dict[str, str] = {}
    target: str | None = None
    platforms: list[str] = []
    # what publish does when the registry holds fewer platforms than asked for
    missing_platforms: Literal["fail", "warn"] = "fail"


APP_BUILD_FIELDS = ("context", "dockerfile", "build_args", "target", "platforms")
"""The ``[app]`` keys that describe its one image; ``[images.<name>]`` replaces them."""

_IMAGE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


class ImageConfig(Model):
    """``[images.<name>]``: one image of several (a monorepo), built from its own Dockerfile.

    Its stages are ``build-<name>``, ``scan-<name>``, ``smoke-<name>`` (when
    ``smoke``) and ``publish-<name>``; the ``[stages.build]`` ... options
    apply to each.  ``repository`` defaults to ``<registry.repository>/<name>``;
    ``image_name`` (the manifests' ``images[].name``) to ``<name>``, for every
    environment (a string) or per environment (a table).
    """

    context: Path = Path(".")
    dockerfile: str = "Dockerfile"
    build_args: dict[str, str] = {}
    target: str | None = None
    platforms: list[str] = []
    repository: str | None = Field(default=None, pattern=_REPOSITORY)
    image_name: str | dict[str, str] | None = None
    smoke: StrictBool = True
    # stored for the fan-out (conveyor plan --changed-since): files that concern this image
    paths: list[str] = []

    @field_validator("image_name")
    @classmethod
    def _names(cls, value: str | dict[str, str] | None) -> str | dict[str, str] | None:
        for name in [value] if isinstance(value, str) else (value or {}).values():
            if not name:
                raise ValueError("an image name must not be empty")
        return value

    @field_validator("paths")
    @classmethod
    def _relative(cls, paths: list[str]) -> list[str]:
        for path in paths:
            parts = path.replace("\\", "/").split("/")
            if not path or path.startswith("/") or ".." in parts:
                raise ValueError(f"{path!r} must be a relative path without '..'")
        return paths


@dataclass(frozen=True)
class ImageSpec:
    """One image the pipeline delivers, resolved: the ``[app]`` shorthand or an ``[images]`` table.

    Attributes:
        name: ``app.name`` for the shorthand, else the ``[images.<name>]`` key.
        suffix: ``None`` for the shorthand (stages ``build``, ``publish`` ...),
            else the name (stages ``build-<name>``, ``publish-<name>`` ...).
        repository: The registry repository path (no host, no tag).
        names: The manifests' ``images[].name`` per environment.
        default_name: That name in an environment ``names`` does not list.
        smoke: Whether the smoke stage probes it.
    """

    name: str
    suffix: str | None
    context: Path
    dockerfile: str
    build_args: Mapping[str, str]
    target: str | None
    platforms: tuple[str, ...]
    repository: str
    names: Mapping[str, str]
    default_name: str
    smoke: bool = True
    paths: tuple[str, ...] = ()

    def stage(self, kind: str) -> str:
        """The name of this image's ``kind`` stage: ``build`` or ``build-<name>``."""
        return kind if self.suffix is None else f"{kind}-{self.suffix}"

    def image_name(self, environment: str) -> str:
        """The name ``environment``'s manifests give this image (``images[].name``)."""
        return self.names.get(environment, self.default_name)


class RegistryConfig(Model):
    host: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]+)?$")
    # a repository path only: the tag is always the source SHA, never configured
    repository: str = Field(pattern=_REPOSITORY)
    insecure: StrictBool = False
    username_env: str | None = None
    password_env: str | None = None
    # how long a registry request may wait for a connect or an answer (exit 7 after)
    timeout: Duration = Field(default=30.0, gt=0)

    @property
    def image(self) -> str:
        return f"{self.host}/{self.repository}"


BUILTIN_STAGES = ("test", "build", "scan", "smoke", "publish", "manifest", "policy", "verify")
"""The stages Conveyor brings; ``report`` (summary.json) is always last and not configurable."""

RESERVED_STAGES = (*BUILTIN_STAGES, "report")

_STAGE_NAME = r"^[a-z][a-z0-9_-]*$"


class StageOptions(Model):
    timeout: Duration = 1800.0
    retries: StrictInt = Field(default=0, ge=0, le=10)
    enabled: StrictBool = True
    # more stages this one waits for, besides its built-in dependencies
    needs: list[Annotated[str, Field(pattern=_STAGE_NAME)]] = []


class TestStageConfig(StageOptions):
    image: Argument
    command: list[str] = Field(min_length=1)
    env: dict[str, str] = {}
    secrets: list[str] = []
    junit: str | None = "junit.xml"
    caches: dict[str, str] = {}

    _names = field_validator("secrets")(_check_env_names)


class BuildStageConfig(StageOptions):
    secrets: list[str] = []

    _names = field_validator("secrets")(_check_env_names)


class IgnoreEntry(Model):
    id: str
    reason: str = Field(min_length=1)
    expires: date


class ScanStageConfig(StageOptions):
    """``[stages.scan]``: Trivy on the image tarball, gated on severity.

    ``image`` unset: the local ``trivy`` executable runs on this machine.
    ``image`` set: Trivy runs in that image through the engine, its database
    kept in the cache volume ``cache``.  ``env`` reaches Trivy either way
    (``TRIVY_DB_REPOSITORY`` for a mirror, for instance).
    """

    fail_on: list[Severity] = ["HIGH", "CRITICAL"]
    ignore_unfixed: StrictBool = False
    ignore: list[IgnoreEntry] = []
    trivy: str = "trivy"
    sarif: str = "trivy.sarif"
    image: Argument | None = Field(default=None, min_length=1)
    cache: str = Field(default="trivy-db", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    env: dict[str, str] = {}

    _env_keys = field_validator("env")(_check_env_keys)


class PublishStageConfig(StageOptions):
    pass


class ManifestStageConfig(StageOptions):
    environment: str = "staging"
    # commit even when the source repository cannot tell whether the pinned commit is older
    allow_unordered: StrictBool = False


class JsonProof(Model):
    """``json = { path = "build.commit", equals = "{sha}" }``: a JSON field proves the version."""

    path: str = Field(pattern=r"^[^.\s]+(\.[^.\s]+)*$")
    equals: str = "{sha}"

    @field_validator("equals")
    @classmethod
    def _template(cls, template: str) -> str:
        problem = template_problem(template)
        if problem:
            raise ValueError(problem)
        return template


class SmokeContract(Model):
    """Which answer proves the version (``conveyor.smoke.contract``).

    ``status`` unset accepts any 2xx; ``body_contains`` or ``json`` say how the
    version shows; ``prove_version = false`` lets the status alone prove it;
    none of them: a JSON ``version`` field or the body contains the SHA.
    """

    status: StrictInt | None = Field(default=None, ge=100, le=599)
    body_contains: str | None = Field(default=None, min_length=1)
    json_proof: JsonProof | None = Field(default=None, alias="json")
    prove_version: StrictBool = True

    @field_validator("body_contains")
    @classmethod
    def _template(cls, template: str | None) -> str | None:
        problem = template_problem(template) if template is not None else None
        if problem:
            raise ValueError(problem)
        return template

    @model_validator(mode="after")
    def _one_proof(self) -> SmokeContract:
        if self.body_contains is not None and self.json_proof is not None:
            raise ValueError("set body_contains or json, not both: each proves the version")
        if not self.prove_version and (self.body_contains is not None or self.json_proof):
            raise ValueError("prove_version = false checks the status only: drop the proof")
        return self

    def contract(self) -> Contract:
        """The pure contract the probe checks answers against."""
        proof = self.json_proof
        return Contract(
            status=self.status,
            body_contains=self.body_contains,
            json_path=tuple(proof.path.split(".")) if proof else (),
            json_equals=proof.equals if proof else None,
            prove_version=self.prove_version,
        )


class SmokeStageConfig(StageOptions, SmokeContract):
    port: StrictInt = Field(default=8080, ge=1, le=65535)
    path: str = "/version"
    deadline: Duration = 60.0
    # good answers needed in a row: a service that dies after its first answer fails
    passes: StrictInt = Field(default=3, ge=1, le=100)


class ServiceConfig(Model):
    """``services = [{ name = "db", image = "postgres:16.4", port = 5432 }]`` of a stage.

    Started before the stage, reachable from its container by ``name``,
    waited for until ``port`` accepts connections, removed afterwards.
    ``build = "hello"`` runs the image this pipeline built (``app.name``,
    or an ``[images]`` name) instead: the stage then needs its build.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    image: Argument | None = Field(default=None, min_length=1)
    build: str | None = Field(default=None, min_length=1)
    port: StrictInt = Field(ge=1, le=65535)
    env: dict[str, str] = {}
    command: list[str] = []

    @model_validator(mode="after")
    def _one_image(self) -> ServiceConfig:
        if (self.image is None) == (self.build is None):
            raise ValueError(
                "set image (a pinned image) or build (an image this pipeline builds), exactly one"
            )
        return self

    @property
    def shown(self) -> str:
        """The image as ``conveyor graph`` draws it."""
        return self.image or f"the {self.build} image built"

    _env_keys = field_validator("env")(_check_env_keys)


class CustomStageConfig(StageOptions):
    """``[stages.<name>]`` that is not a built-in: a command in a container.

    A stage that does not depend on ``publish`` is a gate (publish waits for
    it) unless ``gate = false``; one that needs ``publish`` or ``manifest``
    runs after them.
    """

    image: Argument = Field(min_length=1)
    command: list[str] | None = Field(default=None, min_length=1)
    script: str | None = Field(default=None, min_length=1)
    description: str = ""
    source: Path = Path(".")
    workdir: str = Field(default="/src", pattern=r"^/")
    env: dict[str, str] = {}
    secrets: list[str] = []
    caches: dict[str, str] = {}
    services: list[ServiceConfig] = []
    outputs: list[str] = []
    junit: str | None = None
    always: StrictBool = False
    gate: StrictBool = True
    paths: list[str] = []

    _names = field_validator("secrets")(_check_env_names)

    _env_keys = field_validator("env")(_check_env_keys)

    @field_validator("outputs", "paths")
    @classmethod
    def _relative(cls, paths: list[str]) -> list[str]:
        for path in paths:
            parts = path.replace("\\", "/").split("/")
            if not path or path.startswith("/") or ".." in parts:
                raise ValueError(f"{path!r} must be a relative path without '..'")
        return paths

    @model_validator(mode="after")
    def _one_command(self) -> CustomStageConfig:
        if (self.command is None) == (self.script is None):
            raise ValueError(
                "set command (an argument vector) or script (run with sh -c), exactly one"
            )
        names = [s.name for s in self.services]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"services named {', '.join(twice)} more than once")
        return self

    @property
    def argv(self) -> tuple[str, ...]:
        """The command to run: ``command``, or ``sh -c script``."""
        if self.command is not None:
            return tuple(self.command)
        return ("sh", "-c", self.script or "")


_NO_TABLE = {
    "policy": "it takes [stages.manifest]'s options",
    "verify": "it takes [stages.smoke]'s options",
    "report": "it writes summary.json, always",
}


class StagesConfig(Model):
    """``[stages]``: the built-in stages' options, and every other table a custom stage."""

    model_config = ConfigDict(frozen=True, extra="allow", validate_default=True)
    __pydantic_extra__: dict[str, CustomStageConfig] = Field(init=False)

    test: TestStageConfig | None = None
    build: BuildStageConfig = BuildStageConfig()
    scan: ScanStageConfig = ScanStageConfig()
    publish: PublishStageConfig = PublishStageConfig()
    manifest: ManifestStageConfig = ManifestStageConfig()
    smoke: SmokeStageConfig = SmokeStageConfig()

    @model_validator(mode="before")
    @classmethod
    def _custom_names(cls, data: object) -> object:
        if isinstance(data, dict):
            for name in data:
                if name in _NO_TABLE:
                    raise ValueError(
                        f"{name!r} is a built-in stage without a table of its own "
                        f"({_NO_TABLE[name]}); give your stage another name"
                    )
                if name not in BUILTIN_STAGES and not re.match(_STAGE_NAME, str(name)):
                    raise ValueError(
                        f"stage name {name!r} must start with a letter and hold only "
                        "lower-case letters, digits, '-' and '_'"
                    )
        return data

    @property
    def custom(self) -> dict[str, CustomStageConfig]:
        """The user's own stages, in the file's order."""
        return dict(self.model_extra or {})

    def options(self, name: str) -> StageOptions | None:
        """The options of the stage ``name`` (built-in or custom), if it has any."""
        if name in self.custom:
            return self.custom[name]
        value = getattr(self, name, None) if name in BUILTIN_STAGES else None
        return value if isinstance(value, StageOptions) else None


class Promotion(StrEnum):
    COMMIT = "commit"
    PULL_REQUEST = "pull-request"


class FluxSetterConfig(Model):
    """A YAML file whose values carry Flux ``# {"$imagepolicy": "ns:name[:tag|:name|:digest]"}``."""

    file: str = Field(min_length=1)
    policy: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*:[a-z0-9][a-z0-9.-]*$")
    # the ':tag' value carries 'tag@digest' (for charts that build 'repository:tag')
    tag_digest: StrictBool = False

    _inside = field_validator("file")(_inside_repository)


class HelmValuesConfig(Model):
    """A Helm values file whose image block (``repository``, ``tag``, ``digest``) is at ``key``."""

    file: str = Field(min_length=1)
    key: str = Field(default="image", pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")

    _inside = field_validator("file")(_inside_repository)


class EnvironmentConfig(Model):
    path: str
    promotion: Promotion = Promotion.COMMIT
    image_name: str | None = None
    kustomize: StrictBool = True
    flux_setters: list[FluxSetterConfig] = []
    helm_values: list[HelmValuesConfig] = []
    # render the overlay's helmCharts (kustomize --enable-helm; helm on PATH)
    enable_helm: StrictBool = False
    # commit even when the overlay cannot be rendered here (remote base offline, no helm)
    allow_unrendered: StrictBool = False
    # changed only through a pull request; unset: protected when named production/prod
    protected: StrictBool | None = None

    _inside = field_validator("path")(_inside_repository)

    def is_protected(self, name: str) -> bool:
        """Whether the environment called ``name`` changes only through pull requests."""
        return self.protected if self.protected is not None else name.lower() in PROTECTED_NAMES

    @model_validator(mode="after")
    def _edits_something(self) -> EnvironmentConfig:
        if not self.kustomize and not self.flux_setters and not self.helm_values:
            raise ValueError(
                "kustomize = false and no flux_setters or helm_values: nothing would pin the image"
            )
        return self


class ForgeConfig(Model):
    """Where promotion pull/merge requests are opened (``[gitops.forge]``).

    ``project`` is ``owner/repo`` on GitHub and the project path
    (``group/sub/project``) or numeric id on GitLab.  ``api_url`` defaults to
    the public service.  GitHub ``reviewers`` are logins; GitLab ``reviewers``
    are numeric user ids (the merge-request API takes ids).  The token is read
    from ``token_env``, or from ``gitops.token_env`` when that is not set.
    """

    kind: Literal["github", "gitlab"]
    project: str = Field(min_length=1)
    api_url: str | None = None
    token_env: str | None = None
    labels: list[str] = []
    reviewers: list[str] = []

    @model_validator(mode="after")
    def _check(self) -> ForgeConfig:
        if self.token_env is not None:
            _check_env_names([self.token_env])
        if self.kind == "github" and self.project.count("/") != 1:
            raise ValueError(f"project {self.project!r} must be 'owner/repo' for GitHub")
        if self.kind == "gitlab":
            for reviewer in self.reviewers:
                if not reviewer.isdigit():
                    raise ValueError(
                        f"GitLab reviewer {reviewer!r} must be a numeric user id "
                        "(GET /api/v4/users?username=NAME shows it)"
                    )
        return self

    @property
    def base_url(self) -> str:
        """The REST API root: configured, or the public service's."""
        if self.api_url:
            return self.api_url.rstrip("/")
        return "https://api.github.com" if self.kind == "github" else "https://gitlab.com/api/v4"


class GitOpsConfig(Model):
    repo: Argument
    branch: Argument = "main"
    token_env: str | None = None
    author_name: str = "Conveyor"
    author_email: str = "conveyor@localhost"
    message: str = "deploy({environment}): {app} {short_sha}\n\nimage: {image}\nsource: {sha}"
    max_push_attempts: StrictInt = Field(default=20, ge=1, le=100)
    environments: dict[str, EnvironmentConfig] = {}
    forge: ForgeConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _protected_default_to_pull_requests(cls, data: object) -> object:
        # a protected environment without a word on promotion goes by pull request
        if not isinstance(data, dict) or not isinstance(data.get("environments"), dict):
            return data
        environments = dict(data["environments"])
        for name, env in environments.items():
            if isinstance(env, dict) and "promotion" not in env:
                protected = env.get("protected")
                if protected is True or (
                    protected is None and str(name).lower() in PROTECTED_NAMES
                ):
                    environments[name] = {**env, "promotion": Promotion.PULL_REQUEST.value}
        return {**data, "environments": environments}

    @field_validator("message")
    @classmethod
    def _template(cls, message: str) -> str:
        # checked here, not at commit time: a typo must not wait for the first push
        sample = dict.fromkeys(MESSAGE_FIELDS, "0" * 40)
        try:
            message.format(**sample)
        except (KeyError, IndexError, AttributeError, ValueError) as error:
            problem = (
                f"names the unknown field {{{error.args[0]}}}"
                if isinstance(error, KeyError)
                else f"is not a valid template ({error})"
            )
            raise ValueError(
                f"{problem}; the fields are {', '.join('{' + n + '}' for n in MESSAGE_FIELDS)}"
                " (write {{ and }} for literal braces)"
            ) from None
        return message

    @field_validator("environments")
    @classmethod
    def _protected_by_pull_request(
        cls, environments: dict[str, EnvironmentConfig]
    ) -> dict[str, EnvironmentConfig]:
        for name, env in environments.items():
            if env.is_protected(name) and env.promotion is Promotion.COMMIT:
                why = "protected = true" if env.protected else f"named {name!r}"
                raise ValueError(
                    f"{name}.promotion is 'commit', but environment {name!r} is protected "
                    f"({why}) and changes only through a pull request: set "
                    f'gitops.environments.{name}.promotion = "pull-request" '
                    f"(or protected = false if it is not production)"
                )
        return environments


class SmokeTarget(SmokeContract):
    url: str
    timeout: Duration = 300.0


class PolicyConfig(Model):
    allowed_registries: list[str] = []
    mutable_tags: list[str] = ["latest"]
    require_digest: StrictBool = True

    @field_validator("allowed_registries")
    @classmethod
    def _compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from exc
        return patterns


class RunConfig(Model):
    capacity: StrictInt = Field(default=4, ge=1, le=256)
    on_failure: Literal["cancel", "finish"] = "finish"
    ca_bundle: Path | None = None
    # a Python file of @stage functions (conveyor.dsl), relative to conveyor.toml
    pipeline: Path | None = None


class Config(Model):
    """The whole of ``conveyor.toml``; ``root`` is the directory it was read from."""

    app: AppConfig
    registry: RegistryConfig
    images: dict[str, ImageConfig] = {}
    stages: StagesConfig = StagesConfig()
    gitops: GitOpsConfig | None = None
    smoke: dict[str, SmokeTarget] = {}
    policy: PolicyConfig = PolicyConfig()
    run: RunConfig = RunConfig()
    root: Path = Path(".")

    @model_validator(mode="after")
    def _no_mutable_images(self) -> Config:
        mutable = {"latest", *self.policy.mutable_tags}
        images = {
            "stages.test.image": self.stages.test.image if self.stages.test else None,
            "stages.scan.image": self.stages.scan.image,
        }
        for name, stage in self.stages.custom.items():
            images[f"stages.{name}.image"] = stage.image
            for index, service in enumerate(stage.services):
                if service.image is not None:
                    images[f"stages.{name}.services[{index}].image"] = service.image
        for field, image in images.items():
            if image is None or "@" in image:
                continue
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            if not tag or tag in mutable:
                raise ValueError(
                    f"{field} {image!r} uses a mutable tag "
                    f"({tag or 'none, which means latest'}); pin a version or a digest"
                )
        return self

    @field_validator("images", mode="before")
    @classmethod
    def _image_names(cls, images: object) -> object:
        for name in images if isinstance(images, dict) else ():
            if not _IMAGE_NAME.match(str(name)):
                raise ValueError(
                    f"image name {name!r} must be lower-case letters, digits and inner '-' "
                    f"(it names the stages build-<name>, publish-<name> ...), e.g. 'api'"
                )
        return images

    @model_validator(mode="after")
    def _images_fit(self) -> Config:
        if not self.images:
            return self
        both = [f for f in APP_BUILD_FIELDS if f in self.app.model_fields_set]
        if both:
            raise ValueError(
                f"app.{both[0]} is set, but [images] describes the images: [app] keeps the "
                f"name and source, each [images.<name>] its own {', '.join(APP_BUILD_FIELDS)}; "
                f"move app.{both[0]} into the [images.<name>] tables"
            )
        environments = self.gitops.environments if self.gitops is not None else {}
        for env_name, env in environments.items():
            where = f"gitops.environments.{env_name}"
            if env.image_name is not None:
                raise ValueError(
                    f"{where}.image_name names the [app] image, but [images] describes the "
                    f"images: set image_name in each [images.<name>] (a string, or "
                    f'{{ {env_name} = "..." }})'
                )
            if env.flux_setters or env.helm_values or not env.kustomize:
                raise ValueError(
                    f"{where}: with [images] the images are pinned in the kustomization only; "
                    "flux_setters, helm_values and kustomize = false are not supported with "
                    "several images"
                )
        seen: dict[str, str] = {}
        for spec in self.image_specs():
            other = seen.setdefault(spec.repository, spec.name)
            if other != spec.name:
                raise ValueError(
                    f"images.{other} and images.{spec.name} both publish to the repository "
                    f"{spec.repository!r}: give each its own images.<name>.repository"
                )
            named = self.images[spec.name].image_name
            for env_name in named if isinstance(named, dict) else ():
                if env_name not in environments:
                    raise ValueError(
                        f"images.{spec.name}.image_name names the environment {env_name!r}, "
                        f"which is not one of gitops.environments "
                        f"({', '.join(sorted(environments)) or 'none defined'})"
                    )
        for env_name in environments:
            used: dict[str, str] = {}
            for spec in self.image_specs():
                other = used.setdefault(spec.image_name(env_name), spec.name)
                if other != spec.name:
                    raise ValueError(
                        f"images.{other} and images.{spec.name} both use the name "
                        f"{spec.image_name(env_name)!r} in environment {env_name!r}: one "
                        "kustomization entry cannot pin two images; set image_name"
                    )
        return self

    @model_validator(mode="after")
    def _environment_exists(self) -> Config:
        if self.gitops is not None and self.stages.manifest.enabled:
            env = self.stages.manifest.environment
            if env not in self.gitops.environments:
                raise ValueError(
                    f"stages.manifest.environment {env!r} is not one of gitops.environments "
                    f"({', '.join(sorted(self.gitops.environments)) or 'none defined'})"
                )
        return self

    def manifest_repo(self) -> str:
        """The manifest repository: a URL as written, a local path made absolute.

        Raises:
            ValueError: there is no ``[gitops]`` section.
        """
        if self.gitops is None:
            raise ValueError("no [gitops] section")
        repo = self.gitops.repo
        if "://" in repo or repo.startswith("git@") or ":" in repo.split("/")[0]:
            return repo
        return str(self.resolve(repo))

    def image_name(self, environment: str) -> str:
        """The name ``environment``'s manifests give the app's image (``images[].name``).

        ``image_name`` when set, else the application's name (``app.name``).
        """
        env = self.gitops.environments.get(environment) if self.gitops else None
        if env is not None and env.image_name:
            return env.image_name
        return self.app.name

    def image_specs(self) -> tuple[ImageSpec, ...]:
        """The images the pipeline delivers: each ``[images.<name>]``, or the ``[app]`` one."""
        if not self.images:
            app = self.app
            environments = self.gitops.environments if self.gitops is not None else {}
            return (
                ImageSpec(
                    name=app.name,
                    suffix=None,
                    context=app.context,
                    dockerfile=app.dockerfile,
                    build_args=dict(app.build_args),
                    target=app.target,
                    platforms=tuple(app.platforms),
                    repository=self.registry.repository,
                    names={n: e.image_name for n, e in environments.items() if e.image_name},
                    default_name=app.name,
                ),
            )
        specs = []
        for name, image in self.images.items():
            named = image.image_name
            specs.append(
                ImageSpec(
                    name=name,
                    suffix=name,
                    context=image.context,
                    dockerfile=image.dockerfile,
                    build_args=dict(image.build_args),
                    target=image.target,
                    platforms=tuple(image.platforms),
                    repository=image.repository or f"{self.registry.repository}/{name}",
                    names=dict(named) if isinstance(named, dict) else {},
                    default_name=named if isinstance(named, str) else name,
                    smoke=image.smoke,
                    paths=tuple(image.paths),
                )
            )
        return tuple(specs)

    def image_spec(self, name: str | None) -> ImageSpec:
        """The image called ``name`` (``None``: the first, the ``[app]`` one for the shorthand).

        Raises:
            KeyError: no image has that name.
        """
        specs = self.image_specs()
        if name is None:
            return specs[0]
        for spec in specs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def image_address(self, spec: ImageSpec, sha: str) -> str:
        """Where ``spec`` is published: ``host/repository:<sha>``."""
        return f"{self.registry.host}/{spec.repository}:{sha}"

    def resolve(self, path: Path | str) -> Path:
        """A path from the file, made absolute against the file's directory."""
        p = Path(path)
        return p if p.is_absolute() else (self.root / p).resolve()
