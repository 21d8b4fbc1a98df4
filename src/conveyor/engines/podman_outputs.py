"""Copying a run's outputs out of its overlay's upper layer (or the source) to the host."""

from __future__ import annotations

import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

from conveyor.errors import EngineError


def export_outputs(
    outputs: Sequence[str], upper: Path, source: Path, export_dir: Path
) -> dict[str, Path]:
    """Copy each output from the run's upper layer (else the source) to ``export_dir``."""
    export_dir.mkdir(parents=True, exist_ok=True)
    exported: dict[str, Path] = {}
    for output in outputs:
        relative = Path(output)
        if relative.is_absolute() or ".." in relative.parts:
            raise EngineError(
                f"output {output!r} must be a path inside the working directory",
                hint="name outputs relative to the workdir, e.g. 'junit.xml' or 'reports/'",
            )
        for root in (upper, source):
            found = root / relative
            if found.is_dir() or _is_regular(found):
                target = export_dir / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                if found.is_dir():
                    shutil.copytree(found, target, dirs_exist_ok=True, ignore=_whiteouts)
                else:
                    shutil.copy2(found, target)
                exported[output] = target
                break
    return exported


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def _whiteouts(directory: str, names: list[str]) -> set[str]:
    """Overlay deletion markers (character devices) are not files to copy."""
    return {n for n in names if stat.S_ISCHR((Path(directory) / n).lstat().st_mode)}
