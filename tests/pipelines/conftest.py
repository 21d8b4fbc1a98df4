"""On sys.path: the module's package (pipelines/src), the Dagger API double (tests/engines),
the manifest repository helper and forge doubles (tests/gitops)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT / "pipelines" / "src", ROOT / "tests" / "engines", ROOT / "tests" / "gitops"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
