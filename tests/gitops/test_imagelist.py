"""The images: editor on flow entries, flow lists, anchors, aliases and merge keys, byte-exactly."""

from __future__ import annotations

import pytest

from conveyor.errors import ManifestError
from conveyor.gitops.kustomization import ImageEdit, ImageEntry, read_images, set_image

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
FLOW_ENTRY = f'images:\n  - {{name: X, newTag: "6.14.1", digest: {D1}}}\n'
ANCHORS = (
    "images:\n"
    "- name: a\n"
    "  newName: &reg myacr.io/shared  # the registry\n"
    "  newTag: v1\n"
    "- name: b\n"
    "  newName: *reg\n"
    "  newTag: v2\n"
)


def test_a_flow_entry_is_edited_in_place() -> None:
    assert set_image(FLOW_ENTRY, ImageEdit.parse("X:6.14.2")) == (
        'images:\n  - {name: X, newTag: "6.14.2"}\n'
    )
    assert set_image(FLOW_ENTRY, ImageEdit.parse(f"X=*:*@{D2}")) == (
        f'images:\n  - {{name: X, newTag: "6.14.1", digest: {D2}}}\n'
    )
    # digest only: kustomize's NAME@DIGEST keeps name and digest, in the same flow entry
    assert set_image(FLOW_ENTRY, ImageEdit.parse(f"X@{D2}")) == (
        f"images:\n  - {{name: X, digest: {D2}}}\n"
    )
    assert set_image(FLOW_ENTRY, ImageEdit.parse(f"X=reg.io/x:7@{D2}")) == (
        f'images:\n  - {{name: X, newTag: "7", digest: {D2}, newName: reg.io/x}}\n'
    )


def test_flow_lists_get_flow_entries() -> None:
    text = "images: [{name: a, newTag: v1}]  # pinned\n"
    assert set_image(text, ImageEdit.parse("b:v2")) == (
        "images: [{name: a, newTag: v1}, {name: b, newTag: v2}]  # pinned\n"
    )
    block_of_flows = "images:\n- {name: a, newTag: v1}\n"
    assert set_image(block_of_flows, ImageEdit.parse("b:v2")) == (
        "images:\n- {name: a, newTag: v1}\n- {name: b, newTag: v2}\n"
    )


def test_setting_one_entry_never_changes_another_through_an_anchor() -> None:
    out = set_image(ANCHORS, ImageEdit.parse("a=other.io/a:v3"))
    # the anchor moves to the alias, so b keeps myacr.io/shared; no key twice, no anchor lost
    assert out == (
        "images:\n"
        "- name: a\n"
        "  newName: other.io/a  # the registry\n"
        "  newTag: v3\n"
        "- name: b\n"
        "  newName: &reg myacr.io/shared\n"
        "  newTag: v2\n"
    )
    assert read_images(out)[1] == ImageEntry("b", "myacr.io/shared", "v2")


def test_an_alias_in_the_edited_entry_is_replaced_by_the_value() -> None:
    out = set_image(ANCHORS, ImageEdit.parse("b=x.io/b:v3"))
    assert out == ANCHORS.replace(
        "  newName: *reg\n  newTag: v2\n", "  newName: x.io/b\n  newTag: v3\n"
    )
    assert set_image(ANCHORS, ImageEdit.parse("b:v3")) == ANCHORS.replace(
        "  newName: *reg\n  newTag: v2\n", "  newTag: v3\n"
    )
    assert read_images(set_image(ANCHORS, ImageEdit.parse("a:v9")))[1] == ImageEntry(
        "b", "myacr.io/shared", "v2"
    )


def test_merge_keys_are_read_kept_where_they_can_be_and_dropped_where_not() -> None:
    text = "images:\n- &d\n  name: a\n  newName: r.io/a\n  newTag: v1\n- <<: *d\n  name: b\n"
    assert read_images(text)[1] == ImageEntry("b", "r.io/a", "v1")
    assert set_image(text, ImageEdit.parse("b=r.io/b:v2")) == (
        text + "  newName: r.io/b\n  newTag: v2\n"
    )
    # removing a field the merge brings: the merge goes and the entry is written out
    assert set_image(text, ImageEdit.parse("b:v2")) == text.replace(
        "- <<: *d\n  name: b\n", "- name: b\n  newTag: v2\n"
    )
    # the merged entry changes: the entry merging it gets the fields it had from it
    assert set_image(text, ImageEdit.parse("a:v2")) == (
        "images:\n- &d\n  name: a\n  newTag: v2\n- newName: r.io/a\n  newTag: v1\n  name: b\n"
    )
    anchored_value = "images:\n- name: a\n  newTag: &t v1\n- name: b\n  newTag: [*t]\n"
    with pytest.raises(ManifestError, match="must be a single value"):
        set_image(anchored_value, ImageEdit.parse("a:v2"))


def test_values_sharing_an_anchor_inside_one_entry_are_refused_not_a_traceback() -> None:
    text = "images:\n- name: a\n  newName: &x v1\n  newTag: *x\n"
    with pytest.raises(ManifestError, match="nothing was changed"):
        set_image(text, ImageEdit.parse("a=r.io/a:v2"))


def test_a_byte_order_mark_and_crlf_are_kept() -> None:
    text = "\ufeffresources:\r\n- ../base\r\nimages:\r\n- name: a\r\n  newTag: v1\r\n"
    out = set_image(text, ImageEdit.parse(f"a@{D1}"))
    assert out == f"\ufeffresources:\r\n- ../base\r\nimages:\r\n- name: a\r\n  digest: {D1}\r\n"


def test_an_empty_flow_list_with_a_comment_keeps_one_space_before_it() -> None:
    text = "resources:\n- ../base\nimages: [] # filled by CI\n"
    assert set_image(text, ImageEdit.parse("hello:v1")) == (
        "resources:\n- ../base\nimages: # filled by CI\n- name: hello\n  newTag: v1\n"
    )
    # an empty value followed by a comment keeps the line as it is
    assert set_image("images:   # x\nz: 1\n", ImageEdit.parse("hello:v1")) == (
        "images:   # x\n- name: hello\n  newTag: v1\nz: 1\n"
    )


def test_a_merge_that_brings_nothing_the_entry_keeps_just_goes() -> None:
    text = "images: [&base {name: a}, {<<: *base, name: b}]  # pinned\n"
    assert set_image(text, ImageEdit.parse("a:v1")) == (
        "images: [&base {name: a, newTag: v1}, {name: b}]  # pinned\n"
    )
    block = "images:\n- &base\n  name: a\n- <<: *base\n  name: b\n"
    assert set_image(block, ImageEdit.parse("a:v1")) == (
        "images:\n- &base\n  name: a\n  newTag: v1\n- name: b\n"
    )
