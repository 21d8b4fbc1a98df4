"""Flux image-policy setter markers and Helm values image blocks."""

from __future__ import annotations

import pytest

from conveyor.errors import ManifestError
from conveyor.gitops.helm import ValuesEdit, set_values_image
from conveyor.gitops.setters import SetterEdit, set_setters
from conveyor.policy.reference import parse

DIGEST = "sha256:" + "5" * 64
SHA = "ab12" * 10

FLUX = """\
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: app
          image: ghcr.io/acme/app:v1 # {"$imagepolicy": "flux-system:app"}
        - name: other
          image: ghcr.io/acme/other:v9 # {"$imagepolicy": "flux-system:other"}
---
# a HelmRelease in the same file
spec:
  values:
    image:
      repository: ghcr.io/acme/app # {"$imagepolicy": "flux-system:app:name"}
      tag: "v1"  # {"$imagepolicy": "flux-system:app:tag"}
    list:
      - 'ghcr.io/acme/app:v1' # {"$imagepolicy": "flux-system:app"}
"""


def test_every_marker_of_the_policy_is_set_and_nothing_else() -> None:
    edit = SetterEdit.pin("flux-system:app", parse(f"ghcr.io/acme/app:{SHA}"))
    out = set_setters(FLUX, edit, path="apps/app.yaml")
    assert out == (
        FLUX.replace("ghcr.io/acme/app:v1 #", f"ghcr.io/acme/app:{SHA} #")
        .replace('tag: "v1"', f'tag: "{SHA}"')
        .replace("'ghcr.io/acme/app:v1'", f"'ghcr.io/acme/app:{SHA}'")
    )
    assert set_setters(out, edit) == out
    assert edit.current(FLUX, "x") == "ghcr.io/acme/app:v1"
    assert edit.target(FLUX, "x") == f"ghcr.io/acme/app:{SHA}"


def test_digest_is_written_into_the_full_marker_and_digest_marker() -> None:
    text = (
        'image: ghcr.io/acme/app:v1 # {"$imagepolicy": "ns:app"}\n'
        'digest: none # {"$imagepolicy": "ns:app:digest"}\n'
    )
    out = set_setters(text, SetterEdit("ns:app", "ghcr.io/acme/app", "v2", DIGEST))
    assert out == (
        f'image: ghcr.io/acme/app:v2@{DIGEST} # {{"$imagepolicy": "ns:app"}}\n'
        f'digest: {DIGEST} # {{"$imagepolicy": "ns:app:digest"}}\n'
    )


def test_official_images_keep_the_short_name() -> None:
    edit = SetterEdit.pin("ns:web", parse(f"nginx:1.27@{DIGEST}"))
    assert edit.value(None) == f"nginx:1.27@{DIGEST}"
    assert edit.value("name") == "nginx"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('# {"$imagepolicy": "ns:app"}\nx: 1\n', "line 1: the ns:app setter marks no value"),
        ('x: a # {"$imagepolicy": "ns:app:size"}\n', "setter suffix 'size' is not one of"),
        ('x: [a # {"$imagepolicy": "ns:app"}\n', "is not valid YAML"),
    ],
)
def test_setter_errors_name_the_file(text: str, problem: str) -> None:
    with pytest.raises(ManifestError, match=problem) as caught:
        set_setters(text, SetterEdit("ns:app", "x", "v2"), path="f.yaml")
    assert str(caught.value).startswith("f.yaml: ")


VALUES = """\
# chart values
replicaCount: 2
backend:
  image:
    repository: ghcr.io/acme/api   # where
    tag: 'old'
  resources: {}
"""


def test_values_block_fields_are_set_and_missing_ones_added() -> None:
    edit = ValuesEdit(("backend", "image"), "ghcr.io/acme/api", SHA, DIGEST)
    out = set_values_image(VALUES, edit)
    assert out == VALUES.replace("tag: 'old'", f"tag: '{SHA}'\n    digest: {DIGEST}")
    assert set_values_image(out, edit) == out
    assert edit.current(VALUES, "v") == "ghcr.io/acme/api:old"
    assert edit.target(VALUES, "v") == f"ghcr.io/acme/api:{SHA}@{DIGEST}"


def test_values_fields_left_none_are_untouched_and_crlf_kept() -> None:
    crlf = VALUES.replace("\n", "\r\n")
    out = set_values_image(crlf, ValuesEdit(("backend", "image"), tag="1234"))
    assert out == crlf.replace("tag: 'old'", "tag: '1234'")


@pytest.mark.parametrize(
    ("key_path", "problem"),
    [
        (("frontend", "image"), "has no frontend"),
        (("backend", "image", "repository"), "backend.image.repository is not a block mapping"),
        (("backend", "resources"), "backend.resources is not a block mapping"),
    ],
)
def test_values_key_path_errors(key_path: tuple[str, ...], problem: str) -> None:
    with pytest.raises(ManifestError, match=problem):
        set_values_image(VALUES, ValuesEdit(key_path, tag="x"), path="values.yaml")


PARTS = """\
image:
  repository: ghcr.io/acme/app # {"$imagepolicy": "ns:app:name"}
  tag: v1 # {"$imagepolicy": "ns:app:tag"}
"""


def test_name_and_tag_markers_cannot_hold_a_required_digest() -> None:
    edit = SetterEdit.pin("ns:app", parse(f"ghcr.io/acme/app:{SHA}@{DIGEST}"), require_digest=True)
    with pytest.raises(ManifestError) as caught:
        set_setters(PARTS, edit, path="values.yaml")
    assert str(caught.value) == (
        "values.yaml: the ns:app setters (:name, :tag) cannot hold the digest, and "
        "policy.require_digest is on; nothing was changed\n"
        '  hint: mark the chart\'s digest value with # {"$imagepolicy": "ns:app:digest"} or '
        'the full image with # {"$imagepolicy": "ns:app"}; or set tag_digest = true on this '
        "flux_setters entry if the chart builds repository:tag"
    )


def test_without_the_digest_rule_name_and_tag_are_written_and_values_are_real() -> None:
    edit = SetterEdit.pin("ns:app", parse(f"ghcr.io/acme/app:{SHA}@{DIGEST}"))
    out = set_setters(PARTS, edit)
    assert out == PARTS.replace("tag: v1", f"tag: {SHA}")
    # the previous and the new value are what the markers hold, not what was asked
    assert edit.current(PARTS, "v") == "ghcr.io/acme/app:v1"
    assert edit.target(PARTS, "v") == f"ghcr.io/acme/app:{SHA}"


def test_tag_digest_and_digest_markers_carry_the_digest() -> None:
    ref = parse(f"ghcr.io/acme/app:{SHA}@{DIGEST}")
    edit = SetterEdit.pin("ns:app", ref, require_digest=True, tag_digest=True)
    out = set_setters(PARTS, edit)
    assert out == PARTS.replace("tag: v1", f"tag: {SHA}@{DIGEST}")
    assert edit.current(out, "v") == f"ghcr.io/acme/app:{SHA}@{DIGEST}"
    with_digest = PARTS + '  digest: "" # {"$imagepolicy": "ns:app:digest"}\n'
    edit = SetterEdit.pin("ns:app", ref, require_digest=True)
    out = set_setters(with_digest, edit)
    assert f'digest: "{DIGEST}" #' in out
    assert f"tag: {SHA} #" in out
    assert edit.target(with_digest, "v") == f"ghcr.io/acme/app:{SHA}@{DIGEST}"
