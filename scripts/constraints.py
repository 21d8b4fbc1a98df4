"""Print the pinned, tested dependency set of conveyor-gitops[dagger]: constraints.txt.

    .venv/bin/python scripts/constraints.py > constraints.txt

Every distribution the CLI needs at run time (the closure of its requirements
with the ``dagger`` extra, markers evaluated for this Python), at the version
installed in this environment, which is the one the tests ran against. The
composite action and scripts/setup.sh install with ``-c constraints.txt``; a
fresh resolution can take a release nobody tested (typer 0.29 broke every
usage error once).
"""

from __future__ import annotations

import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = "conveyor-gitops"
EXTRAS = ("dagger",)


def closure(name: str, extras: tuple[str, ...]) -> dict[str, str]:
    """Every distribution ``name[extras]`` needs, with its installed version."""
    pinned: dict[str, str] = {}
    pending = [(name, extras)]
    while pending:
        current, wanted = pending.pop()
        for text in metadata.requires(current) or []:
            requirement = Requirement(text)
            environments = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
            if requirement.marker is not None and not any(
                requirement.marker.evaluate(env) for env in environments
            ):
                continue
            key = canonicalize_name(requirement.name)
            if key in pinned:
                continue
            pinned[key] = metadata.version(requirement.name)
            pending.append((requirement.name, tuple(requirement.extras)))
    return pinned


def main() -> int:
    pins = closure(ROOT, EXTRAS)
    print(f"# The tested dependency set of {ROOT}[{','.join(EXTRAS)}]: scripts/constraints.py")
    for key in sorted(pins):
        print(f"{key}=={pins[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
