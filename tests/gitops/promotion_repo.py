"""A real bare manifest repository for the promotion tests, and a work clone to change it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from conveyor.gitops.kustomization import ImageEntry, find_image

SHA_A = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
SHA_B = "b" * 40
DIGEST_A = "sha256:" + "2" * 64
DIGEST_B = "sha256:" + "3" * 64
STAGING = "apps/hello/overlays/staging/kustomization.yaml"
PRODUCTION = "apps/hello/overlays/production/kustomization.yaml"
BRANCH = "conveyor/promote-production-hello"


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@dataclass
class Remote:
    """A bare manifest repository and a work clone to change it as another pipeline would."""

    bare: Path
    work: Path

    def sha(self, ref: str = "main") -> str:
        return git("--git-dir", str(self.bare), "rev-parse", f"refs/heads/{ref}")

    def branches(self) -> list[str]:
        out = git("--git-dir", str(self.bare), "for-each-ref", "--format=%(refname:short)")
        return sorted(out.splitlines())

    def show(self, ref: str, path: str) -> str:
        return git("--git-dir", str(self.bare), "show", f"{ref}:{path}")

    def image(self, ref: str, path: str) -> ImageEntry | None:
        return find_image(self.show(ref, path), "hello", path)

    def set_staging(self, tag: str, digest: str) -> None:
        git("pull", "--quiet", "origin", "main", cwd=self.work)
        file = self.work / STAGING
        text = file.read_text()
        old = find_image(text, "hello", STAGING)
        assert old is not None
        assert old.new_tag is not None
        assert old.digest is not None
        file.write_text(text.replace(old.new_tag, tag).replace(old.digest, digest))
        git("commit", "--quiet", "-am", f"staging {tag[:7]}", cwd=self.work)
        git("push", "--quiet", "origin", "HEAD:main", cwd=self.work)


def make_remote(manifests: Path, tmp_path: Path) -> Remote:
    """Put the manifests copy under git, pushed to a new bare repository's ``main``."""
    bare = tmp_path / "manifests.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    git("init", "--quiet", "--initial-branch=main", cwd=manifests)
    git("config", "user.name", "Tester", cwd=manifests)
    git("config", "user.email", "tester@example.invalid", cwd=manifests)
    git("add", "-A", cwd=manifests)
    git("commit", "--quiet", "-m", "initial manifests", cwd=manifests)
    git("remote", "add", "origin", str(bare), cwd=manifests)
    git("push", "--quiet", "origin", "main", cwd=manifests)
    return Remote(bare, manifests)
