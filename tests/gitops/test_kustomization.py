"""``set_image`` edits kustomization text like ``kustomize edit set image``, byte-exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from conveyor.errors import InvalidReferenceError, ManifestError
from conveyor.gitops.kustomization import (
    ImageEdit,
    ImageEntry,
    find_image,
    kustomization_file,
    read_images,
    set_image,
)
from conveyor.gitops.renderer import render
from conveyor.policy.reference import parse

SHA = "c0ffee00" * 5
DIGEST = "sha256:" + "4" * 64
OLD_DIGEST = "sha256:" + "2" * 64


def documents(text: str) -> list[Any]:
    return [d for d in YAML(typ="safe").load_all(text) if d is not None]


def differences(before: Any, after: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Every leaf that differs between two parsed YAML trees, with its path."""
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after)):
            found += differences(before.get(key), after.get(key), f"{path}.{key}")
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        found = []
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            found += differences(b, a, f"{path}[{i}]")
        return found
    return [] if before == after else [(path, before, after)]


def edit_and_render(overlay: Path, edit: ImageEdit) -> tuple[str, list[tuple[str, Any, Any]]]:
    file = kustomization_file(overlay)
    before = render(overlay)
    text = file.read_bytes().decode()  # bytes: read_text() would turn CRLF into LF
    file.write_bytes(set_image(text, edit, path=str(file)).encode())
    after = render(overlay)
    diff = differences(documents(before), documents(after))
    return file.read_bytes().decode(), diff


def test_existing_entry_changes_only_the_image_in_rendered_output(manifests: Path) -> None:
    overlay = manifests / "apps/hello/overlays/staging"
    edit = ImageEdit.pin("hello", parse(f"myacr.azurecr.io/hello:{SHA}@{DIGEST}"))
    text, diff = edit_and_render(overlay, edit)
    new = f"myacr.azurecr.io/hello:{SHA}@{DIGEST}"
    old = f"myacr.azurecr.io/hello:0a1b2c3d4e5f60718293a4b5c6d7e8f901234567@{OLD_DIGEST}"
    assert diff == [
        ("[1].spec.template.spec.containers[0].image", old, new),
        ("[1].spec.template.spec.initContainers[0].image", old, new),
    ]
    original = (
        Path(__file__).parents[1]
        / "resources/manifests/apps/hello/overlays/staging"
        / "kustomization.yaml"
    ).read_text()
    # exactly two value tokens changed; every comment and the quoting style stayed
    assert text == original.replace(
        '"0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"', f'"{SHA}"'
    ).replace(OLD_DIGEST, DIGEST)


def test_missing_images_block_is_added_and_rendered(manifests: Path) -> None:
    overlay = manifests / "apps/hello/overlays/production"
    original = (overlay / "kustomization.yaml").read_text()
    edit = ImageEdit("hello", "myacr.azurecr.io/hello", SHA, DIGEST)
    text, diff = edit_and_render(overlay, edit)
    new = f"myacr.azurecr.io/hello:{SHA}@{DIGEST}"
    assert diff == [
        ("[1].spec.template.spec.containers[0].image", "hello", new),
        ("[1].spec.template.spec.initContainers[0].image", "hello", new),
    ]
    assert text == original + (
        "images:\n"
        "- name: hello\n"
        "  newName: myacr.azurecr.io/hello\n"
        f"  newTag: {SHA}\n"
        f"  digest: {DIGEST}\n"
    )


def test_new_name_only_keeps_tag_from_base(manifests: Path) -> None:
    overlay = manifests / "apps/hello/overlays/production"
    _, diff = edit_and_render(overlay, ImageEdit.parse("hello=myacr.azurecr.io/hello-v2"))
    assert {d[2] for d in diff} == {"myacr.azurecr.io/hello-v2"}


def test_digest_only_pin_renders_name_at_digest(manifests: Path) -> None:
    overlay = manifests / "apps/worker/overlays/staging"
    text, diff = edit_and_render(overlay, ImageEdit.parse(f"worker=*:*@{DIGEST}"))
    pinned = f"myacr.azurecr.io/worker:9f8e7d6c5b4a39281706f5e4d3c2b1a098765432@{DIGEST}"
    assert {d[2] for d in diff} == {pinned}
    assert len(diff) == 2  # the CronJob's and the Job's container, nothing else
    # kustomize's NAME@DIGEST form replaces the entry: only name and digest remain
    assert find_image(set_image(text, ImageEdit.parse(f"worker@{DIGEST}")), "worker") == (
        ImageEntry("worker", None, None, DIGEST)
    )


def test_crlf_file_keeps_crlf_and_comments(manifests: Path) -> None:
    file = manifests / "apps/hello/overlays/staging/kustomization.yaml"
    crlf = file.read_text().replace("\n", "\r\n")
    file.write_bytes(crlf.encode())
    _, diff = edit_and_render(file.parent, ImageEdit("hello", "myacr.azurecr.io/hello", SHA))
    raw = file.read_bytes().decode()
    assert "\n" not in raw.replace("\r\n", "")
    assert raw.count("\r\n") == crlf.count("\r\n") - 1  # the digest line went, none added
    assert "# registry path\r\n" in raw
    assert f"digest: {OLD_DIGEST}" not in raw  # NAME=NEWNAME:TAG drops the old digest
    assert {d[2] for d in diff} == {f"myacr.azurecr.io/hello:{SHA}"}


def test_new_entry_is_appended_in_the_file_style() -> None:
    text = (
        "resources:\n"
        "  - ../base\n"
        "images:\n"
        "  - name: a   # first\n"
        "    newTag: v1\n"
        "# end of images\n"
        "namespace: x\n"
    )
    out = set_image(text, ImageEdit("b", None, "v2", None))
    assert out == (
        "resources:\n"
        "  - ../base\n"
        "images:\n"
        "  - name: a   # first\n"
        "    newTag: v1\n"
        "  - name: b\n"
        "    newTag: v2\n"
        "# end of images\n"
        "namespace: x\n"
    )
    assert [e.name for e in read_images(out)] == ["a", "b"]


def test_indented_lists_style_is_followed_for_a_new_block() -> None:
    text = "resources:\n  - ../base\n"
    assert set_image(text, ImageEdit.parse("app:v3")) == (
        "resources:\n  - ../base\nimages:\n  - name: app\n    newTag: v3\n"
    )


def test_empty_images_values_and_files() -> None:
    assert (
        set_image("images: []\n", ImageEdit.parse("a:v1")) == "images:\n- name: a\n  newTag: v1\n"
    )
    assert set_image("images:\nx: 1\n", ImageEdit.parse("a:v1")) == (
        "images:\n- name: a\n  newTag: v1\nx: 1\n"
    )
    assert set_image("", ImageEdit.parse("a:v1")) == "images:\n- name: a\n  newTag: v1\n"
    assert set_image("x: 1", ImageEdit.parse("a:v1")) == "x: 1\nimages:\n- name: a\n  newTag: v1\n"


def test_tags_that_yaml_would_read_as_numbers_are_quoted() -> None:
    out = set_image("images:\n- name: a\n  newTag: v1\n", ImageEdit.parse("a:1234567"))
    assert out == 'images:\n- name: a\n  newTag: "1234567"\n'
    assert find_image(out, "a") == ImageEntry("a", None, "1234567")
    out = set_image("images:\n- name: a\n  newTag: 'v1'\n", ImageEdit.parse("a:1.10"))
    assert out == "images:\n- name: a\n  newTag: '1.10'\n"


def test_multi_document_file_edits_the_first_document_as_kustomize_reads_it() -> None:
    text = (
        "# generated\n"
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        "resources: [a.yaml]\n"
        "---\n"
        "kind: Note\n"
    )
    out = set_image(text, ImageEdit.parse("a:v2"))
    assert out == text.replace(
        "resources: [a.yaml]\n", "resources: [a.yaml]\nimages:\n- name: a\n  newTag: v2\n"
    )
    with pytest.raises(ManifestError, match=r"k\.yaml: has 2 YAML documents and the first is a No"):
        set_image("kind: Note\n---\nb: 2\n", ImageEdit.parse("a:v2"), path="k.yaml")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "images:\n- name: a\n   newTag: [\n",
            "apps/x/kustomization.yaml: is not valid YAML at line",
        ),
        ("images: {a: b}\n", "images: must be a list of entries"),
        ("images:\n- newTag: v1\n", "images[0] has no 'name'"),
        ("images:\n- name: a\n- name: a\n", "lists image 'a' 2 times"),
        ("- a\n- b\n", "is not a YAML mapping"),
        ("images:\n- name: a\n  newTag: {x: 1}\n", "images[0].newTag must be a single value"),
        ("a: 1\na: 2\n", "is not valid YAML"),
    ],
)
def test_malformed_files_name_the_file(text: str, problem: str) -> None:
    with pytest.raises(ManifestError) as caught:
        set_image(text, ImageEdit.parse("a:v2"), path="apps/x/kustomization.yaml")
    assert problem in str(caught.value)
    assert str(caught.value).startswith("apps/x/kustomization.yaml: ")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("app:v1", ImageEdit("app", None, "v1", None)),
        (f"app@{DIGEST}", ImageEdit("app", None, None, DIGEST)),
        ("app=x.io/app", ImageEdit("app", "x.io/app", None, None)),
        (f"app=x.io/app:v1@{DIGEST}", ImageEdit("app", "x.io/app", "v1", DIGEST)),
        ("app=localhost:5000/app", ImageEdit("app", "localhost:5000/app", None, None)),
        ("app=localhost:5000/app:v2", ImageEdit("app", "localhost:5000/app", "v2", None)),
        ("app=*:v2", ImageEdit("app", "*", "v2", None)),
        ("localhost:5000/app:v2", ImageEdit("localhost:5000/app", None, "v2", None)),
    ],
)
def test_parse_reads_kustomize_argument_forms(spec: str, expected: ImageEdit) -> None:
    assert ImageEdit.parse(spec) == expected


@pytest.mark.parametrize("spec", ["app", "a=b=c", "app=x:v 1", "app@sha256:zz", "a b:v1", "=x:v1"])
def test_parse_refuses_other_forms(spec: str) -> None:
    with pytest.raises(InvalidReferenceError, match="not a valid image reference"):
        ImageEdit.parse(spec)


def test_kustomization_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="directory does not exist"):
        kustomization_file(tmp_path / "nope")
    with pytest.raises(ManifestError, match=r"has no kustomization\.yaml, kustomization\.yml"):
        kustomization_file(tmp_path)
    (tmp_path / "kustomization.yaml").write_text("")
    (tmp_path / "kustomization.yml").write_text("")
    with pytest.raises(ManifestError, match="more than one kustomization file"):
        kustomization_file(tmp_path)


# --- properties --------------------------------------------------------------

_comment = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_categories=("Cc",)),
    max_size=20,
).map(lambda s: f"# {s}")
_word = st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,15}", fullmatch=True)
_digest = st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True)


@st.composite
def kustomizations(draw: st.DrawFn) -> tuple[str, str, str, list[str]]:
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    indent = draw(st.sampled_from(["", "  "]))

    def chunk(side: str) -> str:
        lines = []
        for i in range(draw(st.integers(0, 3))):
            kind = draw(st.sampled_from(["comment", "key", "list", "blank"]))
            if kind == "comment":
                lines.append(draw(_comment))
            elif kind == "key":
                lines.append(f"k{side}{i}: {draw(_word)}  {draw(_comment)}")
            elif kind == "list":
                lines.append(f"l{side}{i}:{eol}{indent}- {draw(_word)}")
            else:
                lines.append("")
        return "".join(line + eol for line in lines)

    names = draw(st.lists(_word, min_size=0, max_size=4, unique=True))
    block = ""
    if names:
        block = "images:" + eol
        for name in names:
            block += f"{indent}- name: {name}  {draw(_comment)}{eol}"
            if draw(st.booleans()):
                block += f"{indent}  newTag: {draw(_tag)!r}{eol}".replace("'", '"')
            if draw(st.booleans()):
                block += f"{indent}  digest: {draw(_digest)}{eol}"
    prefix = "kind: Kustomization" + eol + chunk("p")
    return prefix, block, chunk("s"), names


_edits = st.builds(
    ImageEdit,
    name=st.one_of(_word, st.just("app")),
    new_name=st.none() | st.from_regex(r"[a-z]{1,6}\.io/[a-z]{1,6}", fullmatch=True),
    new_tag=st.none() | _tag,
    digest=st.none() | _digest,
)


@settings(max_examples=150, deadline=None)
@given(case=kustomizations(), edit=_edits)
def test_property_idempotent_and_unrelated_bytes_kept(
    case: tuple[str, str, str, list[str]], edit: ImageEdit
) -> None:
    prefix, block, suffix, _names = case
    text = prefix + block + suffix
    once = set_image(text, edit)
    assert set_image(once, edit) == once
    assert once.startswith(prefix)
    if block:
        assert once.endswith(suffix)
    entries = {e.name: e for e in read_images(once)}
    assert entries[edit.name] == edit.resolve(None)
    before = {e.name: e for e in read_images(text)}
    assert {n: e for n, e in entries.items() if n != edit.name} == {
        n: e for n, e in before.items() if n != edit.name
    }
    # setting what is already there changes nothing at all
    if edit.name in before:
        same = before[edit.name]
        assert (
            set_image(text, ImageEdit(same.name, same.new_name, same.new_tag, same.digest)) == text
        )
    eol = "\r\n" if "\r\n" in text else "\n"
    assert once.replace("\r\n", "").count("\n") == (0 if eol == "\r\n" else once.count("\n"))


def test_removed_fields_on_the_dash_line_keep_the_entry_valid() -> None:
    text = f"images:\n- newTag: x  # old\n  digest: {DIGEST}\n  name: a  # keep\n  newName: b\n"
    assert set_image(text, ImageEdit("a", "b")) == "images:\n- name: a  # keep\n  newName: b\n"
    text = f"images:\n  - name: a\n    newTag: x\n    digest: {DIGEST}\n"
    assert set_image(text, ImageEdit("a", "c")) == "images:\n  - name: a\n    newName: c\n"
