"""Conveyor's image editor against ``kustomize edit set image`` (kustomize v5.7.1).

One trial takes a layout of tests/resources/editor-corpus (or a generated
one), copies it twice, runs ``kustomize edit set image SPEC`` in one copy and
``conveyor manifest set-image DIR SPEC`` in the other, then compares what
``kustomize build`` renders from both.  The outcome is one of:

- ``agree``: both render the same bytes (or, where neither can render here -
  a remote base offline - both files hold the same ``images:`` entries);
  Conveyor's edit is idempotent and kept the file's comments, line endings and
  byte order mark.
- ``refused``: Conveyor refused with one clear ``error:`` line (no traceback)
  and left the file as it was.
- ``kustomize-failed``: kustomize could not edit the file; Conveyor's result
  renders and pins the image as kustomize's argument means.
- ``wrong``: anything else (a different render, a traceback, a changed file
  on refusal, a second run that changes the file again, a lost comment).

The kustomize binary is the one scripts/install-go-tools.sh caches; a
missing one fails the run with that command to type.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st
from typer.testing import CliRunner

from conveyor.cli.app import app
from conveyor.gitops.kustomization import (
    KUSTOMIZATION_NAMES,
    ImageEdit,
    ImageEntry,
    read_images,
)
from conveyor.policy.workloads import workload_images

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "resources" / "editor-corpus"
CACHE_BIN = Path(os.environ.get("CONVEYOR_CACHE_DIR", "/var/cache/conveyor")) / "bin"
KUSTOMIZE = CACHE_BIN / "kustomize"
HELM = CACHE_BIN / "helm"
OUTCOMES = ("agree", "refused", "kustomize-failed", "wrong")
_COMMENT = re.compile(r"(?:^|\s)(#.*)$")


class ReferenceMissingError(RuntimeError):
    """kustomize v5.7.1 is not where scripts/install-go-tools.sh puts it."""


def kustomize() -> Path:
    """The reference kustomize binary.

    Raises:
        ReferenceMissingError: it is not installed.
    """
    if not os.access(KUSTOMIZE, os.X_OK):
        raise ReferenceMissingError(
            f"kustomize v5.7.1 is missing at {KUSTOMIZE}: run 'bash scripts/install-go-tools.sh' "
            "(about four minutes the first time)"
        )
    return KUSTOMIZE


@dataclass(frozen=True)
class Trial:
    """One edit of one layout."""

    layout: Path
    directory: str
    spec: str
    expect: str = "agree"
    because: str = ""
    render: tuple[str, ...] = ()
    enable_helm: bool = False

    @property
    def name(self) -> str:
        return f"{self.layout.name}:{self.spec}"


@dataclass
class Result:
    """What a trial gave."""

    trial: Trial
    outcome: str
    detail: str = ""
    message: str = ""


@dataclass
class Tally:
    """Outcomes counted over many trials."""

    counts: Counter[str] = field(default_factory=Counter)
    results: list[Result] = field(default_factory=list)

    def add(self, result: Result) -> None:
        self.counts[result.outcome] += 1
        self.results.append(result)

    def line(self) -> str:
        tried = sum(self.counts.values())
        return (
            f"{tried} tried: {self.counts['agree']} agree with kustomize, "
            f"{self.counts['refused']} refused with a clear message, "
            f"{self.counts['kustomize-failed']} kustomize could not edit (Conveyor's render "
            f"checked), {self.counts['wrong']} wrong"
        )


def corpus_trials(root: Path = CORPUS) -> list[Trial]:
    """Every trial the corpus describes (``case.toml`` of each layout)."""
    trials = []
    for case in sorted(p for p in root.iterdir() if (p / "case.toml").is_file()):
        spec = tomllib.loads((case / "case.toml").read_text())
        for item in spec["trial"]:
            trials.append(
                Trial(
                    case,
                    spec["dir"],
                    item["set"],
                    item.get("expect", "agree"),
                    item.get("because", ""),
                    tuple(spec.get("render", ())),
                    bool(spec.get("enable_helm", False)),
                )
            )
    return trials


def _kustomization(directory: Path) -> Path:
    found = [directory / n for n in KUSTOMIZATION_NAMES if (directory / n).is_file()]
    assert len(found) == 1, f"{directory}: expected one kustomization file, found {found}"
    return found[0]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBECONFIG")}
    env["KUBECONFIG"] = "/dev/null"
    # kubectl and kustomize find helm on PATH (set-image renders with it too)
    env["PATH"] = f"{CACHE_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def build(directory: Path, *, enable_helm: bool = False) -> tuple[bool, str]:
    """``kustomize build DIR``: (rendered?, output or error)."""
    argv = [str(kustomize()), "build"]
    if enable_helm:
        argv += ["--enable-helm", "--helm-command", str(HELM)]
    done = subprocess.run(
        [*argv, str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        check=False,
    )
    return done.returncode == 0, done.stdout if done.returncode == 0 else done.stderr


def comments(text: str) -> list[str]:
    """The comments of a YAML text, in order (a ``#`` inside quotes can pass for one)."""
    found = []
    for line in text.splitlines():
        match = _COMMENT.search(line)
        if match:
            found.append(match.group(1).strip())
    return found


def _lost_style(before: str, after: str) -> str:
    if before.startswith("\ufeff") and not after.startswith("\ufeff"):
        return "the byte order mark was dropped"
    if "\r\n" in before and "\n" in after.replace("\r\n", ""):
        return "CRLF line endings were mixed with LF"
    kept = comments(after)
    lost = [c for c in comments(before) if c not in kept]
    # a comment on a removed line (e.g. '  digest: x  # old') goes with the line
    removed_lines = {line.strip() for line in before.splitlines()} - {
        line.strip() for line in after.splitlines()
    }
    lost = [c for c in lost if not any(c in line for line in removed_lines)]
    return f"comments were lost: {lost}" if lost else ""


def run_trial(  # noqa: PLR0911 - one return per outcome reads best here
    trial: Trial, work: Path, runner: CliRunner | None = None
) -> Result:
    """Edit two copies of the trial's layout, one with each tool, and compare."""
    runner = runner or CliRunner()
    theirs, ours = work / "kustomize", work / "conveyor"
    for target in (theirs, ours):
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(trial.layout, target, ignore=shutil.ignore_patterns("case.toml"))
    file = _kustomization(ours / trial.directory)
    original = file.read_bytes()

    edited = subprocess.run(
        [str(kustomize()), "edit", "set", "image", trial.spec],
        cwd=theirs / trial.directory,
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        check=False,
    )
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{CACHE_BIN}{os.pathsep}{old_path}"
    try:
        args = ["manifest", "set-image", str(ours / trial.directory), trial.spec]
        if trial.enable_helm:
            args.append("--enable-helm")
        ran = runner.invoke(app, args)
    finally:
        os.environ["PATH"] = old_path
    message = (ran.output or "").strip()
    if ran.exception is not None and not isinstance(ran.exception, SystemExit):
        return Result(trial, "wrong", f"traceback: {ran.exception!r}", message)
    if ran.exit_code != 0:
        clean = message.startswith("error: ") and "Traceback" not in message
        if not clean:
            return Result(trial, "wrong", "refused without one clear error line", message)
        if file.read_bytes() != original:
            return Result(trial, "wrong", "refused but the file changed", message)
        return Result(trial, "refused", "", message)

    after = file.read_bytes().decode("utf-8")
    again = runner.invoke(app, ["manifest", "set-image", str(ours / trial.directory), trial.spec])
    if file.read_bytes().decode("utf-8") != after:
        return Result(trial, "wrong", "a second run changed the file again", message)
    if again.exit_code != 0 and "already" not in again.output:
        return Result(trial, "wrong", f"a second run failed: {again.output.strip()}", message)
    lost = _lost_style(original.decode("utf-8"), after)
    if lost:
        return Result(trial, "wrong", lost, message)
    return _compare(trial, theirs, ours, edited, message)


def _compare(
    trial: Trial,
    theirs: Path,
    ours: Path,
    edited: subprocess.CompletedProcess[str],
    message: str,
) -> Result:
    targets = trial.render or (trial.directory,)
    if edited.returncode != 0:
        # kustomize could not edit it: Conveyor's result must render the image
        return _check_alone(trial, ours, targets, edited.stderr.strip(), message)
    for target in targets:
        ok_theirs, out_theirs = build(theirs / target, enable_helm=trial.enable_helm)
        ok_ours, out_ours = build(ours / target, enable_helm=trial.enable_helm)
        if ok_theirs and ok_ours:
            if out_theirs != out_ours:
                return Result(trial, "wrong", f"{target}: the renders differ", message)
        elif ok_theirs != ok_ours:
            which = "kustomize's" if ok_ours else "Conveyor's"
            error = out_ours if ok_theirs else out_theirs
            return Result(trial, "wrong", f"{target}: only {which} edit fails to render: {error}")
        else:
            # neither renders here (a remote base): the entries must be the same
            mine = _entries(_kustomization(ours / trial.directory))
            kust = _entries(_kustomization(theirs / trial.directory))
            if mine != kust:
                return Result(trial, "wrong", f"entries differ: {mine} vs {kust}", message)
    return Result(trial, "agree", "", message)


def _entries(file: Path) -> dict[str, ImageEntry]:
    return {e.name: e for e in read_images(file.read_bytes().decode("utf-8"), str(file))}


def _check_alone(
    trial: Trial, ours: Path, targets: tuple[str, ...], why: str, message: str
) -> Result:
    edit = ImageEdit.parse(trial.spec)
    entry = _entries(_kustomization(ours / trial.directory)).get(edit.name)
    if entry is None:
        return Result(trial, "wrong", "Conveyor's file has no entry for the image", message)
    for target in targets:
        ok, out = build(ours / target, enable_helm=trial.enable_helm)
        if not ok:
            detail = f"kustomize failed ({why}); ours does not render"
            return Result(trial, "wrong", detail, message)
        images = {found.image for found in workload_images(out)}
        wanted = entry.format()
        if not any(image == wanted or image.startswith(wanted + ":") for image in images):
            return Result(trial, "wrong", f"{target} does not render {wanted}: {images}", message)
    return Result(trial, "kustomize-failed", why.splitlines()[0] if why else "", message)


# --- generated layouts --------------------------------------------------------

GENERATED_IMAGES = ("a", "b", "c", "d")
_BASE_DEPLOYMENT = (
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: gen\nspec:\n"
    "  selector:\n    matchLabels: {app: gen}\n  template:\n    metadata:\n"
    "      labels: {app: gen}\n    spec:\n      containers:\n"
    + "".join(f"      - name: {n}\n        image: {n}:0\n" for n in GENERATED_IMAGES)
)


def write_generated(root: Path, overlay: str) -> Trial:
    """A layout with a base using images a..d and ``overlay`` as its overlay's kustomization."""
    (root / "base").mkdir(parents=True)
    (root / "base" / "deployment.yaml").write_text(_BASE_DEPLOYMENT)
    (root / "base" / "kustomization.yaml").write_text("resources:\n- deployment.yaml\n")
    (root / "overlay").mkdir()
    (root / "overlay" / "kustomization.yaml").write_bytes(overlay.encode("utf-8"))
    return Trial(root, "overlay", "")


def generated_strategies() -> st.SearchStrategy[tuple[str, str]]:
    """(overlay text, set-image argument) pairs.

    Block and flow entries in block and flow lists, keys in any order, a value
    anchored in one entry and aliased in a later one, an entry merging the
    first (``<<: *base``), comments, CRLF, a byte order mark, ``---``.
    """
    digest = st.sampled_from([f"sha256:{c * 64}" for c in "0123456789abcdef"])
    tag = st.sampled_from(["v1", "v2", "1.10", "2024.10", "6.14.2", "0123", "true", "x_y-z"])
    new_name = st.sampled_from(["reg.io/x", "myacr.azurecr.io/team/app", "localhost:5000/y"])
    comment = st.sampled_from(["", "  # pinned", "  # by CI: do not edit", " #"])

    @st.composite
    def overlays(draw: st.DrawFn) -> str:  # noqa: PLR0912 - one branch per layout feature
        eol = draw(st.sampled_from(["\n", "\r\n"]))
        indent = draw(st.sampled_from(["", "  ", "    "]))
        names = draw(st.lists(st.sampled_from(GENERATED_IMAGES), unique=True, max_size=4))
        flow_list = bool(names) and draw(st.booleans())
        entries: list[dict[str, str]] = []
        for name in names:
            fields = {"name": name}
            for key, values in (("newName", new_name), ("newTag", tag), ("digest", digest)):
                if draw(st.booleans()):
                    value = draw(values)
                    fields[key] = f'"{value}"' if key == "newTag" else value
            entries.append(fields)
        # an anchor on a value of one entry, used by a later entry
        if len(entries) > 1 and draw(st.booleans()):
            key = draw(st.sampled_from(["newName", "newTag"]))
            holders = [e for e in entries[:-1] if key in e]
            if holders:
                holder = holders[0]
                holder[key] = f"&shared {holder[key]}"
                later = entries[entries.index(holder) + 1 :]
                draw(st.sampled_from(later))[key] = "*shared"
        # a later entry may take fields from the first with a merge key (<<: *base)
        merged_from = None
        if len(entries) > 1 and draw(st.booleans()):
            merged_from = 0
            taker = draw(st.sampled_from(entries[1:]))
            for key in ("newName", "newTag", "digest"):
                if draw(st.booleans()):
                    taker.pop(key, None)
            taker["<<"] = "*base"
        # the keys of an entry in any order ('name' need not come first); a merge key
        # first, as it is written in practice (after keys it sets, readers disagree)
        entries = [
            dict(sorted(draw(st.permutations(list(e.items()))), key=lambda kv: kv[0] != "<<"))
            for e in entries
        ]
        lines = [draw(comment).strip() or "# generated", "resources:", f"{indent}- ../base"]
        if draw(st.booleans()):
            lines.insert(0, "---")

        def anchor(i: int) -> str:
            return "&base " if i == merged_from else ""

        if flow_list:
            items = ", ".join(
                anchor(i) + "{" + ", ".join(f"{k}: {v}" for k, v in e.items()) + "}"
                for i, e in enumerate(entries)
            )
            lines.append(f"images: [{items}]{draw(comment)}")
        elif entries:
            lines.append("images:" + draw(comment))
            for i, e in enumerate(entries):
                if draw(st.booleans()):
                    body = ", ".join(f"{k}: {v}" for k, v in e.items())
                    lines.append(f"{indent}- {anchor(i)}{{{body}}}{draw(comment)}")
                elif i == merged_from:
                    lines.append(f"{indent}- &base{draw(comment)}")
                    lines += [f"{indent}  {k}: {v}" for k, v in e.items()]
                else:
                    first, *rest = e.items()
                    lines.append(f"{indent}- {first[0]}: {first[1]}{draw(comment)}")
                    lines += [f"{indent}  {k}: {v}" for k, v in rest]
        if draw(st.booleans()):
            lines.append("namespace: gen")
        bom = "\ufeff" if draw(st.booleans()) else ""
        return bom + eol.join(lines) + eol

    @st.composite
    def specs(draw: st.DrawFn) -> str:
        name = draw(st.sampled_from(GENERATED_IMAGES))
        form = draw(st.sampled_from(["tag", "digest", "full", "keep-name", "name-only"]))
        if form == "tag":
            return f"{name}:{draw(tag)}"
        if form == "digest":
            return f"{name}@{draw(digest)}"
        if form == "full":
            return f"{name}={draw(new_name)}:{draw(tag)}@{draw(digest)}"
        if form == "keep-name":
            return f"{name}=*:{draw(tag)}@{draw(digest)}"
        return f"{name}={draw(new_name)}"

    return st.tuples(overlays(), specs())
