"""Turning raw runs into medians, the console table and docs/benchmarks.md."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from bench.plan import Metric, Scenario
from bench.sdks import LABELS
from bench.targets import MISS_NOTES, Summary, Verdict, check


def summarize(
    scenarios: list[Scenario], raw: dict[str, dict[str, list[dict[str, Any]]]]
) -> Summary:
    """Per scenario and SDK: median/min/max of each metric over the runs that have it."""
    summary: Summary = {}
    for scenario in scenarios:
        per_sdk = summary.setdefault(scenario.key, {})
        for sdk, runs in raw.get(scenario.key, {}).items():
            entry: dict[str, Any] = {
                "_runs": len(runs),
                "_errors": [r["error"] for r in runs if "error" in r],
                "_skipped": next((r["skipped"] for r in runs if "skipped" in r), None),
            }
            for metric in scenario.metrics:
                values = [r[metric.key] for r in runs if r.get(metric.key) is not None]
                if not values:
                    continue
                if metric.kind == "bool":
                    entry[metric.key] = {"all": all(values), "runs": len(values)}
                else:
                    entry[metric.key] = {
                        "median": statistics.median(values),
                        "min": min(values),
                        "max": max(values),
                        "runs": len(values),
                    }
            per_sdk[sdk] = entry
    return summary


def _cell(entry: dict[str, Any], metric: Metric) -> str:
    stats = entry.get(metric.key)
    if stats is None:
        return "–"
    if metric.kind == "bool":
        return "yes" if stats["all"] else "no"
    text = metric.fmt.format(stats["median"])
    if stats["runs"] > 1 and stats["min"] != stats["max"]:
        text += f" [{metric.fmt.format(stats['min'])}–{metric.fmt.format(stats['max'])}]"
    return text


def _rows(scenario: Scenario, summary: Summary) -> tuple[list[str], list[list[str]]]:
    primary = next((m for m in scenario.metrics if m.better), None)
    compare = primary is not None and "databuddy" in scenario.sdks
    header = ["SDK", *(m.label for m in scenario.metrics)]
    if compare:
        header.append("ours ÷ this")
    entries = summary.get(scenario.key, {})
    ours = entries.get("databuddy", {}).get(primary.key) if primary else None
    rows = []
    for sdk in scenario.sdks:
        entry = entries.get(sdk)
        if entry is None:
            continue
        row = [LABELS.get(sdk, sdk)]
        if entry["_skipped"]:
            row += [entry["_skipped"]] + [""] * (len(header) - 2)
        elif entry["_errors"] and len(entry["_errors"]) == entry["_runs"]:
            row += [f"failed: {entry['_errors'][0][:60]}"] + [""] * (len(header) - 2)
        else:
            row += [_cell(entry, m) for m in scenario.metrics]
            if compare:
                theirs = entry.get(primary.key) if primary else None
                ratio = "–"
                if sdk != "databuddy" and ours and theirs and theirs["median"]:
                    ratio = f"{ours['median'] / theirs['median']:.2f}×"
                row.append(ratio)
            if entry["_errors"]:
                row[0] += f" ({len(entry['_errors'])} failed)"
        rows.append(row)
    return header, rows


def _text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _verdict_rows(verdicts: list[Verdict]) -> list[list[str]]:
    names = {True: "PASS", False: "MISS", None: "n/a"}
    return [[v.target, v.measured, names[v.passed]] for v in verdicts]


def _miss_notes(verdicts: list[Verdict]) -> list[str]:
    notes = [v for v in verdicts if v.passed is False and v.target in MISS_NOTES]
    if not notes:
        return []
    return ["", "Where a target is missed:", ""] + [
        f"- **{v.target}**: {MISS_NOTES[v.target]}" for v in notes
    ]


def _machine(env: dict[str, Any]) -> str:
    load = "/".join(f"{x:.1f}" for x in env["loadavg_start"])
    end = "/".join(f"{x:.1f}" for x in env.get("loadavg_end", env["loadavg_start"]))
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    return (
        f"{env['date']} · {env['mode']} run · Python {env['python']} · {env['cpus']} CPUs · "
        f"load avg {load} → {end} · {env.get('elapsed_s', '?')} s · {versions}"
    )


def text(scenarios: list[Scenario], summary: Summary, env: dict[str, Any]) -> str:
    parts = [
        f"Benchmarks: {_machine(env)}",
        "Cells: median [min–max] over runs, each in a fresh process.",
    ]
    for scenario in scenarios:
        header, rows = _rows(scenario, summary)
        parts.append(f"\n{scenario.title} — {scenario.measures} ({scenario.repeats} repeat(s))")
        parts.append(_text_table(header, rows))
        parts += [f"  note: {note}" for note in scenario.notes]
    parts.append("\nTargets (ratios of medians from this run)")
    parts.append(_text_table(["target", "measured", "result"], _verdict_rows(check(summary))))
    return "\n".join(parts)


HOW_TO_READ = """\
Each cell is the median over repeated runs, with [min–max] when they differ; every run
is a fresh process. "ours ÷ this" divides our median by that SDK's on the scenario's
main metric: below 1 is better for costs (µs, ms, bytes, lost), above 1 for events/s.
All traffic goes to a local counting sink (`bench/sink.py`), so the numbers are the
SDKs' own CPU and memory, not the network's. Figures from a shared or busy machine
are noisy; compare ratios from the same run, not absolute numbers across runs."""


def write_docs(
    scenarios: list[Scenario], summary: Summary, env: dict[str, Any], md: Path, png: Path
) -> None:
    from bench.chart import draw

    load = "/".join(f"{x:.1f}" for x in env["loadavg_start"])
    draw(
        summary,
        png,
        f"{env['date']} · {env['mode']} run · Python {env['python']} · "
        f"{env['cpus']} CPUs · load {load}",
    )
    verdicts = check(summary)
    out = [
        "# Benchmarks",
        "",
        "Generated by `python3 bench/run.py` (see `bench/README.md`); do not edit by hand.",
        "What each SDK costs a web endpoint (gunicorn and uvicorn under `wrk`) is in",
        "[benchmarks-web.md](benchmarks-web.md), written by `python3 bench/web.py`; where",
        "that CPU goes, by thread and by step, in [benchmarks-cost.md](benchmarks-cost.md)",
        "(`python3 bench/cost.py`).",
        "",
        f"Run: {_machine(env)}.",
        "",
        HOW_TO_READ,
        "",
        "## Targets",
        "",
        _md_table(["target", "measured", "result"], _verdict_rows(verdicts)),
        *_miss_notes(verdicts),
        "",
        f"![ours ÷ each peer]({png.name})",
        "",
        "## Results",
    ]
    for scenario in scenarios:
        header, rows = _rows(scenario, summary)
        out += [
            "",
            f"### {scenario.title}",
            "",
            f"{scenario.measures}; {scenario.repeats} repeat(s).",
            "",
        ]
        out.append(_md_table(header, rows))
        if scenario.notes:
            out += ["", *(f"- {note}" for note in scenario.notes)]
    out += ["", "Peers: " + ", ".join(f"`{LABELS[k]}`" for k in LABELS) + ".", ""]
    md.write_text("\n".join(out))
