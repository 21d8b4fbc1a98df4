"""The run's stages as a JUnit report: how CI test views (GitLab's, GitHub's summary) show the DAG.

One ``testcase`` per stage of the user's pipeline: a failed or cancelled
stage is a ``failure`` with its reason, a skipped one is ``skipped`` with
why; the time is the stage's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from xml.etree import ElementTree

FILE_NAME = "stages.junit.xml"


def stages_junit(rows: Sequence[Mapping[str, Any]], *, app: str, run_id: str | None) -> str:
    """The JUnit XML text of ``rows`` (summary.json's ``stages``)."""
    failed = [r for r in rows if r["status"] not in {"success", "skipped"}]
    skipped = [r for r in rows if r["status"] == "skipped"]
    suite = ElementTree.Element(
        "testsuite",
        {
            "name": f"conveyor {app}",
            "tests": str(len(rows)),
            "failures": str(len(failed)),
            "errors": "0",
            "skipped": str(len(skipped)),
            "time": f"{sum(float(r['duration']) for r in rows):.3f}",
        },
    )
    if run_id:
        properties = ElementTree.SubElement(suite, "properties")
        ElementTree.SubElement(properties, "property", {"name": "run_id", "value": run_id})
    for row in rows:
        case = ElementTree.SubElement(
            suite,
            "testcase",
            {"classname": f"conveyor.{app}", "name": row["name"], "time": f"{row['duration']:.3f}"},
        )
        reason = str(row.get("reason") or "")
        if row["status"] == "skipped":
            ElementTree.SubElement(case, "skipped", {"message": reason})
        elif row["status"] != "success":
            failure = ElementTree.SubElement(
                case, "failure", {"message": reason.splitlines()[0] if reason else row["status"]}
            )
            failure.text = reason or row["status"]
    ElementTree.indent(suite)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(suite, "unicode") + "\n"
    )
