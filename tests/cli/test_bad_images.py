"""Bad ``[images]`` input through the real console script: one message, exit 3, nothing run.

The cases of ``tests/cli/test_bad_input.py``'s form (the files, the
arguments, the exit code and the exact first line of stderr), for the
several-images configuration.
"""

from __future__ import annotations

import pytest

from cli.test_bad_input import SHA, TOML, VALID, Case, Outcomes, config, run_cases

CASES = [
    Case(
        "app-build-fields-and-images",
        config('[app.build_args]\nBASE = "x"', "[images.api]"),
        ("graph",),
        3,
        f"error: {TOML}: app.build_args is set, but [images] describes the images: [app] keeps "
        "the name and source, each [images.<name>] its own context, dockerfile, build_args, "
        "target, platforms; move app.build_args into the [images.<name>] tables",
    ),
    Case(
        "image-name-not-a-stage-suffix",
        config("[images.Api_v2]"),
        ("graph",),
        3,
        f"error: {TOML}: images: image name 'Api_v2' must be lower-case letters, digits and "
        "inner '-' (it names the stages build-<name>, publish-<name> ...), e.g. 'api'",
    ),
    Case(
        "image-name-trailing-dash",
        config("[images.api-]"),
        ("plan",),
        3,
        f"error: {TOML}: images: image name 'api-' must be lower-case letters, digits and "
        "inner '-' (it names the stages build-<name>, publish-<name> ...), e.g. 'api'",
    ),
    Case(
        "two-images-one-repository",
        config('[images.api]\nrepository = "shop/api"', "[images.api2]", 'repository = "shop/api"'),
        ("graph",),
        3,
        f"error: {TOML}: images.api and images.api2 both publish to the repository 'shop/api': "
        "give each its own images.<name>.repository",
    ),
    Case(
        "default-repository-clash",
        config('[images.api]\nrepository = "team/hello/web"', "[images.web]"),
        ("graph",),
        3,
        f"error: {TOML}: images.api and images.web both publish to the repository "
        "'team/hello/web': give each its own images.<name>.repository",
    ),
    Case(
        "image-name-unknown-environment",
        config('[images.api]\nimage_name = { staging = "api", qa = "api" }'),
        ("graph",),
        3,
        f"error: {TOML}: images.api.image_name names the environment 'qa', which is not one of "
        "gitops.environments (staging)",
    ),
    Case(
        "image-name-without-gitops",
        {
            "conveyor.toml": (
                VALID.split("[gitops]", maxsplit=1)[0]
                + '[images.api]\nimage_name = { staging = "api" }\n'
            ).encode()
        },
        ("graph",),
        3,
        f"error: {TOML}: images.api.image_name names the environment 'staging', which is not "
        "one of gitops.environments (none defined)",
    ),
    Case(
        "two-images-one-manifest-name",
        config('[images.api]\nimage_name = "shop"', '[images.web]\nimage_name = "shop"'),
        ("graph",),
        3,
        f"error: {TOML}: images.api and images.web both use the name 'shop' in environment "
        "'staging': one kustomization entry cannot pin two images; set image_name",
    ),
    Case(
        "environment-image-name-with-images",
        config('image_name = "hello"', "[images.api]"),
        ("graph",),
        3,
        f"error: {TOML}: gitops.environments.staging.image_name names the [app] image, but "
        "[images] describes the images: set image_name in each [images.<name>] (a string, or "
        '{ staging = "..." })',
    ),
    Case(
        "flux-setters-with-images",
        config('flux_setters = [{ file = "a.yaml", policy = "flux-system:a" }]', "[images.api]"),
        ("graph",),
        3,
        f"error: {TOML}: gitops.environments.staging: with [images] the images are pinned in "
        "the kustomization only; flux_setters, helm_values and kustomize = false are not "
        "supported with several images",
    ),
    Case(
        "image-unknown-key",
        config('[images.api]\ndockerfle = "Dockerfile"'),
        ("graph",),
        3,
        f"error: {TOML}: images.api.dockerfle: unknown key; check the spelling against the "
        "configuration reference",
    ),
    Case(
        "image-smoke-not-strict",
        config('[images.api]\nsmoke = "yes"'),
        ("graph",),
        3,
        f"error: {TOML}: images.api.smoke: Input should be a valid boolean (got 'yes')",
    ),
    Case(
        "custom-stage-takes-an-image-stage-name",
        config("[images.api]", "[stages.build-api]", 'image = "a/b:1"', 'command = ["x"]'),
        ("graph",),
        3,
        f"error: {TOML}: stages.build-api: is defined twice (built-in and stages.build-api)",
    ),
    Case(
        "needs-an-image-that-does-not-exist",
        config(
            "[images.api]",
            "[stages.lint]",
            'image = "a/b:1"',
            'command = ["x"]',
            'needs = ["build-web"]',
        ),
        ("plan",),
        3,
        f"error: {TOML}: stages.lint.needs: 'build-web' is not a stage",
    ),
    Case(
        "promote-with-images",
        config(
            "[images.api]",
            "[gitops.environments.production]",
            'path = "apps/hello/overlays/production"',
        ),
        ("promote", "--from", "staging", "--to", "production"),
        3,
        f"error: {TOML}: images: promote and rollback move the one [app] image; with [images] "
        "they are not supported yet",
    ),
    Case(
        "manifest-update-of-no-image",
        config("[images.api]", "[images.web]"),
        ("manifest", "update", "staging", f"127.0.0.1:5000/team/hello/db:{SHA}@sha256:{'a' * 64}"),
        3,
        f"error: {TOML}: images: no image publishes to '127.0.0.1:5000/team/hello/db'",
    ),
    Case(
        "registry-not-allowed-for-an-image",
        config(
            '[images.api]\nrepository = "team/api"',
            "[policy]",
            "allowed_registries = ['^127\\\\.0\\\\.0\\\\.1:5000/team/hello/.+$']",
        ),
        ("plan",),
        4,
        "",
    ),
]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Outcomes:
    return run_cases(CASES, tmp_path_factory)


@pytest.mark.parametrize("case", [c for c in CASES if c.code == 3], ids=lambda c: c.id)
def test_bad_images_input_is_one_clear_error(case: Case, outcomes: Outcomes) -> None:
    directory, code, stdout, stderr = outcomes[case.id]

    assert "Traceback" not in stderr
    assert code == case.code, stderr
    assert stdout == ""
    assert stderr.splitlines()[0] == case.line.replace("{dir}", str(directory.resolve())), stderr
    assert len(stderr.splitlines()) <= 2, stderr  # the error and, at most, its hint


def test_plan_refuses_an_image_whose_registry_the_policy_does_not_allow(
    outcomes: Outcomes,
) -> None:
    _, code, stdout, stderr = outcomes["registry-not-allowed-for-an-image"]

    assert code == 4, stderr
    assert "publish-api (needs build-api, scan-api, smoke-api)" in stdout
    assert "127.0.0.1:5000/team/api" in stderr
    assert "Traceback" not in stderr
