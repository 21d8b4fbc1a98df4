"""A one-screen text summary of a scan and its gate decision."""

from __future__ import annotations

from conveyor.scan.gate import GateResult
from conveyor.scan.report import ScanReport, Severity

_ORDER = sorted(Severity, key=lambda s: -s.rank)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(0, width - 3)] + "..."


def render_summary(
    report: ScanReport, gate: GateResult, *, limit: int = 10, width: int = 100
) -> str:
    """Summarise a scan for a terminal or a CI log.

    Shows the counts per severity, the gate's verdict, the most severe blocking
    findings (at most ``limit``), what was ignored and why, and ignore entries
    that have expired or matched nothing.

    Args:
        report: The parsed Trivy report.
        gate: The gate's decision for it.
        limit: How many blocking findings to list.
        width: Longest line; titles are clipped to fit.

    Returns:
        The text, lines joined with newlines, without a trailing newline.
    """
    counts = ", ".join(f"{s.value} {gate.counts.get(s, 0)}" for s in _ORDER)
    name = report.artifact_name or report.source
    lines = [f"Scan of {name}: {gate.total} finding(s) ({counts})"]
    fail_on = ", ".join(s.value for s in gate.fail_on) or "nothing"
    verdict = "passed" if gate.passed else f"FAILED, {len(gate.blocking)} blocking"
    lines.append(f"Gate (fail on {fail_on}): {verdict}")
    for finding in gate.blocking[:limit]:
        head = f"  {finding.severity.value:<8} {finding.describe()}"
        room = width - len(head) - 2
        lines.append(f"{head}  {_clip(finding.title, room)}" if room > 10 else head)
    if len(gate.blocking) > limit:
        lines.append(f"  ... and {len(gate.blocking) - limit} more (see the SARIF report)")
    if gate.unfixed:
        lines.append(f"Skipped {len(gate.unfixed)} finding(s) with no fix yet (ignore_unfixed)")
    if gate.ignored:
        lines.append(f"Ignored {len(gate.ignored)} finding(s):")
        seen: set[str] = set()
        for item in gate.ignored:
            if item.finding.id in seen:
                continue
            seen.add(item.finding.id)
            entry = f"  {item.finding.id} until {item.expires.isoformat()}: "
            lines.append(entry + _clip(item.reason, width - len(entry)))
    for expired in gate.expired:
        lines.append(
            f"Expired ignore entry {expired.id} (expired {expired.expires.isoformat()}): "
            "no longer ignores; renew or remove it"
        )
    if gate.unused:
        ids = ", ".join(e.id for e in gate.unused)
        lines.append(f"Ignore entries that matched nothing: {ids}")
    return "\n".join(lines)
