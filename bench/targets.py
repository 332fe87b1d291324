"""The issue's targets, checked against the medians of one run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Summary = dict[str, dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    passed: bool | None  # None: could not be measured (skipped or failed)


def median(summary: Summary, scenario: str, sdk: str, metric: str) -> float | None:
    stats = summary.get(scenario, {}).get(sdk, {}).get(metric)
    return None if stats is None else stats["median"]


def _ratio(
    summary: Summary, scenario: str, metric: str, peer: str, op: str, bound: float, text: str
) -> Verdict:
    ours = median(summary, scenario, "databuddy", metric)
    theirs = median(summary, scenario, peer, metric)
    if ours is None or theirs is None or theirs == 0:
        return Verdict(text, "n/a", None)
    ratio = ours / theirs
    passed = ratio <= bound if op == "<=" else ratio >= bound
    return Verdict(text, f"{ratio:.2f}× ({_num(ours)} vs {_num(theirs)})", passed)


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _difference(summary: Summary, ours: str, base: str, bound: float, text: str) -> Verdict:
    a = median(summary, "front_doors", ours, "mean_us")
    b = median(summary, "front_doors", base, "mean_us")
    if a is None or b is None:
        return Verdict(text, "n/a (module missing)", None)
    return Verdict(text, f"{a - b:+.2f} µs ({a:.2f} vs {b:.2f})", a - b <= bound)


def _zero_lost(summary: Summary) -> Verdict:
    text = "zero events lost at our defaults in the burst"
    stats = summary.get("burst_loss", {}).get("databuddy", {}).get("lost")
    if stats is None:
        return Verdict(text, "n/a", None)
    return Verdict(
        text, f"max {stats['max']:,.0f} lost over {stats['runs']} runs", stats["max"] == 0
    )


def check(summary: Summary) -> list[Verdict]:
    return [
        _ratio(
            summary,
            "caller_cost",
            "mean_us",
            "otel",
            "<=",
            0.6,
            "track() caller cost ≤ 0.6× raw OTel's",
        ),
        _ratio(
            summary,
            "caller_cost",
            "mean_us",
            "segment",
            "<=",
            0.3,
            "track() caller cost ≤ 0.3× segment's",
        ),
        _ratio(
            summary,
            "caller_cost",
            "mean_us",
            "posthog",
            "<=",
            0.2,
            "track() caller cost ≤ 0.2× posthog's",
        ),
        _ratio(
            summary,
            "throughput",
            "events_per_s",
            "otel",
            ">=",
            1.5,
            "delivered events/s ≥ 1.5× raw OTel's",
        ),
        _zero_lost(summary),
        _ratio(
            summary,
            "import_time",
            "import_ms",
            "posthog",
            "<=",
            0.8,
            "import databuddy_otel ≤ 0.8× import posthog",
        ),
        _difference(
            summary,
            "handler-untagged",
            "null-untagged",
            1.0,
            "untagged record via handler ≤ NullHandler + 1 µs",
        ),
        _difference(
            summary, "handler-tagged", "track", 3.0, "tagged record via handler ≤ track() + 3 µs"
        ),
    ]
