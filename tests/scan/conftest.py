from __future__ import annotations

from pathlib import Path

import pytest

TRIVY_REPORTS = Path(__file__).parent / "resources" / "trivy"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def reports() -> Path:
    """The directory of recorded Trivy reports (read them, copy before changing)."""
    return TRIVY_REPORTS
