"""axe-core (from npm, package.json) run on a Playwright page: the WCAG 2 A and AA rules and
axe's best practices. ``make install-dev`` installs it into node_modules/."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

AXE_JS = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
IMPACTS = ("critical", "serious", "moderate", "minor")


def axe_source() -> str:
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS} is missing: run `make install-dev` (npm ci) first")
    return AXE_JS.read_text()


def axe_violations(page, *, exclude: list[str] | None = None) -> list[dict]:
    """axe's violations on ``page`` as it is now, each ``{id, impact, help, nodes}`` with the
    nodes' CSS targets and failure summaries. ``exclude``: selectors left out (a browser's own
    widget that axe cannot see into)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source())
    return page.evaluate(
        """async ([tags, exclude]) => {
            const context = exclude.length ? {exclude: exclude.map((s) => [s])} : document;
            const result = await axe.run(context, {runOnly: {type: 'tag', values: tags},
                                                   resultTypes: ['violations']});
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => ({target: n.target.join(' '), summary: n.failureSummary})),
            }));
        }""",
        [TAGS, exclude or []],
    )


def impact_counts(violations: list[dict]) -> dict[str, int]:
    """Failing elements by impact (every impact named, zeros included)."""
    counts = Counter()
    for violation in violations:
        counts[violation["impact"]] += len(violation["nodes"])
    return {impact: counts.get(impact, 0) for impact in IMPACTS}


def describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']}")
        for node in v["nodes"][:6]:
            lines.append(f"    {node['target']}: {node['summary'].splitlines()[-1].strip()}")
    return "\n".join(lines)


def serious(violations: list[dict]) -> list[dict]:
    return [v for v in violations if v["impact"] in ("critical", "serious")]
