"""The scan gate: which findings of a report stop the pipeline.

A pure function of the report, the stage's options and today's date.  It
raises nothing; the scan stage turns a failed :class:`GateResult` into a
:class:`~conveyor.errors.ScanGateError` with :meth:`GateResult.error`.

Rules, in order, for every finding (vulnerability, secret, failed config check)
whose severity is in ``fail_on``:

1. a vulnerability without a fixed version is skipped when ``ignore_unfixed``;
2. a finding whose id is on the ignore list (case-insensitive) with an expiry
   date not yet passed is ignored, with the entry's reason;
3. anything else blocks.

An ignore entry is valid through its expiry date; from the next day on it no
longer ignores anything and is listed in :attr:`GateResult.expired`, so the
summary can tell the user to renew or remove it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from conveyor.config.models import IgnoreEntry, ScanStageConfig
from conveyor.errors import ScanGateError
from conveyor.scan.report import ScanReport, Severity


class FindingKind(StrEnum):
    VULNERABILITY = "vulnerability"
    SECRET = "secret"  # noqa: S105 -- a kind of finding, not a password
    MISCONFIGURATION = "misconfiguration"


@dataclass(frozen=True)
class Finding:
    """One finding of any kind, flattened for the gate and the summary.

    Attributes:
        kind: Vulnerability, secret or misconfiguration.
        id: CVE/GHSA id, secret rule id or check id; what the ignore list names.
        severity: Trivy's severity.
        target: The result's target (OS, lock file, file path).
        package: The vulnerable package (vulnerabilities only).
        installed_version: Installed package version (vulnerabilities only).
        fixed_version: First fixed version, None when there is none yet.
        title: One line describing it.
        url: Where to read more.
        line: Line in the target (secrets only, 0 otherwise).
    """

    kind: FindingKind
    id: str
    severity: Severity
    target: str
    package: str | None = None
    installed_version: str | None = None
    fixed_version: str | None = None
    title: str = ""
    url: str | None = None
    line: int = 0

    @property
    def unfixed(self) -> bool:
        """A vulnerability for which no fixed version exists yet."""
        return self.kind is FindingKind.VULNERABILITY and not self.fixed_version

    def describe(self) -> str:
        """A short line: id, where, and the fix if any."""
        if self.kind is FindingKind.VULNERABILITY:
            fix = f" (fixed in {self.fixed_version})" if self.fixed_version else " (no fix yet)"
            return f"{self.id} in {self.package} {self.installed_version}{fix}"
        if self.kind is FindingKind.SECRET:
            return f"{self.id} secret in {self.target}:{self.line}"
        return f"{self.id} in {self.target}"


@dataclass(frozen=True)
class IgnoredFinding:
    """A finding that would have blocked, ignored by a valid entry."""

    finding: Finding
    reason: str
    expires: date


@dataclass(frozen=True)
class GateResult:
    """What the gate decided.

    Attributes:
        fail_on: The severities that block, highest first.
        blocking: Findings that fail the gate, most severe first.
        ignored: Findings ignored by a valid ignore entry, with its reason.
        unfixed: Findings at a blocking severity skipped because no fix exists
            and ``ignore_unfixed`` is on.
        expired: Ignore entries whose expiry date has passed; they ignored nothing.
        unused: Valid ignore entries that matched no finding (candidates to remove).
        counts: Every finding in the report per severity, all severities present.
    """

    fail_on: tuple[Severity, ...]
    blocking: tuple[Finding, ...]
    ignored: tuple[IgnoredFinding, ...]
    unfixed: tuple[Finding, ...]
    expired: tuple[IgnoreEntry, ...]
    unused: tuple[IgnoreEntry, ...]
    counts: Mapping[Severity, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when nothing blocks."""
        return not self.blocking

    @property
    def blocking_ids(self) -> tuple[str, ...]:
        """The ids of the blocking findings, each once, most severe first."""
        return tuple(dict.fromkeys(f.id for f in self.blocking))

    @property
    def total(self) -> int:
        """How many findings the report has."""
        return sum(self.counts.values())

    def error(self, image: str) -> ScanGateError | None:
        """The error the scan stage raises for ``image``, or None when the gate passed."""
        if self.passed:
            return None
        return ScanGateError(image, self.blocking_ids, [s.value for s in self.fail_on])


def findings(report: ScanReport) -> list[Finding]:
    """Every finding of the report, flattened, in report order.

    Args:
        report: The parsed Trivy report.

    Returns:
        Vulnerabilities, secrets and failed configuration checks as findings.
    """
    out: list[Finding] = []
    for result in report.results:
        out.extend(
            Finding(
                kind=FindingKind.VULNERABILITY,
                id=v.id,
                severity=v.severity,
                target=result.target,
                package=v.package,
                installed_version=v.installed_version,
                fixed_version=v.fixed_version,
                title=v.title,
                url=v.primary_url,
            )
            for v in result.vulnerabilities
        )
        out.extend(
            Finding(
                kind=FindingKind.SECRET,
                id=s.rule_id,
                severity=s.severity,
                target=result.target,
                title=s.title,
                line=s.start_line,
            )
            for s in result.secrets
        )
        out.extend(
            Finding(
                kind=FindingKind.MISCONFIGURATION,
                id=m.id,
                severity=m.severity,
                target=result.target,
                title=m.title,
                url=m.primary_url,
            )
            for m in result.misconfigurations
            if m.failed
        )
    return out


def evaluate(report: ScanReport, options: ScanStageConfig, *, today: date) -> GateResult:
    """Decide which findings block, following the stage's options.

    Args:
        report: The parsed Trivy report.
        options: ``fail_on``, ``ignore_unfixed`` and ``ignore`` of ``[stages.scan]``.
        today: The date ignore entries are checked against.

    Returns:
        The decision as a value; nothing is raised.
    """
    return evaluate_findings(
        findings(report),
        fail_on=options.fail_on,
        ignore_unfixed=options.ignore_unfixed,
        ignore=options.ignore,
        today=today,
    )


def evaluate_findings(
    found: Iterable[Finding],
    *,
    fail_on: Iterable[str],
    ignore_unfixed: bool,
    ignore: Sequence[IgnoreEntry],
    today: date,
) -> GateResult:
    """The gate over a list of findings; see the module docstring for the rules.

    Args:
        found: The findings to judge.
        fail_on: Severities that block.
        ignore_unfixed: Skip vulnerabilities without a fixed version.
        ignore: Ignore entries with id, reason and expiry date.
        today: The date ignore entries are checked against.

    Returns:
        The decision as a value.
    """
    blocking_severities = {Severity(s) for s in fail_on}
    # Ids are matched without regard to case or surrounding blanks: "cve-2024-1" is CVE-2024-1.
    active = {_key(entry.id): entry for entry in ignore if entry.expires >= today}
    expired = tuple(entry for entry in ignore if entry.expires < today)
    used: set[str] = set()

    counts = dict.fromkeys(Severity, 0)
    blocking: list[Finding] = []
    ignored: list[IgnoredFinding] = []
    unfixed: list[Finding] = []
    for finding in found:
        counts[finding.severity] += 1
        entry = active.get(_key(finding.id))
        if entry is not None:
            used.add(_key(entry.id))
        if finding.severity not in blocking_severities:
            continue
        if ignore_unfixed and finding.unfixed:
            unfixed.append(finding)
        elif entry is not None:
            ignored.append(IgnoredFinding(finding, entry.reason, entry.expires))
        else:
            blocking.append(finding)

    def by_severity(f: Finding) -> int:
        return -f.severity.rank

    return GateResult(
        fail_on=tuple(sorted(blocking_severities, key=lambda s: -s.rank)),
        blocking=tuple(sorted(blocking, key=by_severity)),
        ignored=tuple(ignored),
        unfixed=tuple(unfixed),
        expired=expired,
        unused=tuple(e for key, e in active.items() if key not in used),
        counts=counts,
    )


def _key(finding_id: str) -> str:
    return finding_id.strip().casefold()
