"""Counting the results in a JUnit XML report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from conveyor.errors import ConveyorError


@dataclass(frozen=True)
class JUnitSummary:
    tests: int
    failures: int
    errors: int
    skipped: int

    def __str__(self) -> str:
        return (
            f"{self.tests} tests, {self.failures} failed, {self.errors} errors, "
            f"{self.skipped} skipped"
        )


def summarize(path: Path) -> JUnitSummary:
    """Totals over every ``testsuite`` of the report at ``path``.

    Raises:
        ConveyorError: the file is not JUnit XML.
    """
    try:
        root = ElementTree.parse(path).getroot()  # noqa: S314 - our own test run's report
    except (ElementTree.ParseError, OSError) as exc:
        raise ConveyorError(f"{path}: not a readable JUnit XML report: {exc}") from exc
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")

    def total(key: str) -> int:
        return sum(int(suite.get(key, "0")) for suite in suites)

    return JUnitSummary(total("tests"), total("failures"), total("errors"), total("skipped"))
