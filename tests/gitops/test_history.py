"""read_image and image_history over real repositories, deepening shallow clones."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitops_helpers import git

from conveyor.errors import ManifestError
from conveyor.gitops.kustomization import ImageEdit, ImageEntry
from conveyor.gitops.update import image_history, read_image

ENV = "apps/hello/overlays/staging"
FILE = f"{ENV}/kustomization.yaml"


@pytest.fixture
def history_remote(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A remote whose staging image went v0..v9, with unrelated commits in between.

    Returns the bare repository and, per value, the commit that introduced it.
    """
    work = tmp_path / "work"
    (work / ENV).mkdir(parents=True)
    (work / "README").write_text("0\n")
    kustomization = work / FILE
    kustomization.write_text(
        "# rev 0\nresources: [../base]\nimages:\n- name: hello\n  newTag: v0\n"
    )
    git("init", "-q", "-b", "main", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "seed", cwd=work)
    introduced = {"v0": git("rev-parse", "HEAD", cwd=work).strip()}
    for i in range(1, 30):
        text = kustomization.read_text()
        if i % 3 == 0:
            text = ImageEdit("hello", None, f"v{i // 3}", None).apply(text, FILE)
        else:
            text = text.replace(text.splitlines()[0], f"# rev {i}")
        kustomization.write_text(text)
        (work / "README").write_text(f"{i}\n")
        git("commit", "-q", "-am", f"change {i}", cwd=work)
        if i % 3 == 0:
            introduced[f"v{i // 3}"] = git("rev-parse", "HEAD", cwd=work).strip()
        (work / "README").write_text(f"{i}b\n")
        git("commit", "-q", "-am", f"unrelated {i}", cwd=work)
    bare = tmp_path / "history.git"
    git("clone", "-q", "--bare", str(work), str(bare))
    return bare, introduced


def test_history_lists_values_newest_first_with_introducing_commit(
    history_remote: tuple[Path, dict[str, str]],
) -> None:
    bare, introduced = history_remote
    entries = image_history(str(bare), "main", ENV, "hello", limit=4, depth=3)
    assert [e.image for e in entries] == [ImageEntry("hello", None, f"v{n}") for n in (9, 8, 7, 6)]
    assert [e.commit for e in entries] == [introduced[f"v{n}"] for n in (9, 8, 7, 6)]
    assert entries[0].subject == "change 27"
    assert entries[0].author == "Test"
    assert entries[0].date[:4].isdigit()


def test_history_to_the_root_includes_the_first_value(
    history_remote: tuple[Path, dict[str, str]],
) -> None:
    bare, introduced = history_remote
    entries = image_history(str(bare), "main", ENV, "hello", limit=100, depth=5)
    assert [e.image.new_tag if e.image else None for e in entries] == [
        f"v{n}" for n in range(9, -1, -1)
    ]
    assert entries[-1].commit == introduced["v0"]


def test_read_image_reads_the_tip(history_remote: tuple[Path, dict[str, str]]) -> None:
    bare, _ = history_remote
    assert read_image(str(bare), "main", ENV, "hello") == ImageEntry("hello", None, "v9")
    assert read_image(str(bare), "main", ENV, "other") is None
    with pytest.raises(ManifestError, match="apps/nope"):
        read_image(str(bare), "main", "apps/nope", "hello")


def test_read_image_finds_the_kustomization_as_kustomize_does(tmp_path: Path) -> None:
    work = tmp_path / "work"
    for path, text in {
        "kustomization.yaml": "images:\n- name: root\n  newTag: r1\n",
        "alt/kustomization.yml": "images:\n- name: alt\n  newTag: a1\n",
        "capital/Kustomization": "images:\n- name: cap\n  newTag: c1\n",
        "two/kustomization.yaml": "images: []\n",
        "two/kustomization.yml": "images: []\n",
        "empty/README": "no kustomization here\n",
        "latin1/kustomization.yaml": "# caf\xe9\n",
    }.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_bytes(text.encode("latin-1"))
    git("init", "-q", "-b", "main", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "seed", cwd=work)
    bare = str(work)
    assert read_image(bare, "main", ".", "root") == ImageEntry("root", None, "r1")
    assert read_image(bare, "main", "", "root") == ImageEntry("root", None, "r1")
    assert read_image(bare, "main", "alt/", "alt") == ImageEntry("alt", None, "a1")
    assert read_image(bare, "main", "capital", "cap") == ImageEntry("cap", None, "c1")
    with pytest.raises(ManifestError, match="more than one kustomization file") as two:
        read_image(bare, "main", "two", "x")
    assert str(two.value.path) == "two"
    assert "kustomization.yaml, kustomization.yml" in two.value.problem
    with pytest.raises(ManifestError, match=r"has no kustomization\.yaml") as none:
        read_image(bare, "main", "empty", "x")
    assert str(none.value.path) == "empty"
    with pytest.raises(ManifestError, match="directory does not exist"):
        read_image(bare, "main", "empty/README", "x")
    with pytest.raises(ManifestError, match="is not UTF-8 text") as latin:
        read_image(bare, "main", "latin1", "x")
    assert str(latin.value.path) == "latin1/kustomization.yaml"
