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


#: What the runs showed where a target is missed, printed under the targets table.
MISS_NOTES = {
    "tagged record via handler ≤ NullHandler tagged + track() + 3 µs": (
        "measured without sending (one process, best of three `timeit` runs), the "
        "handler's own work (finding the tags, adding the record's logger and level, "
        "building the event) costs 3–4 µs over NullHandler + track(); the rest of the "
        "gap appears only while the senders run (the medians in section 6 sit much "
        "closer to the budget than the means), and grows with the larger events the "
        "handler sends (the record's logger, level and timestamp)."
    ),
    "50 ms round trip, 2,000 events/s offered: track() p99 ≤ 50 µs": (
        "the floor row (json.dumps of the same properties in the same paced loop) has "
        "had a p99 of 35–73 µs on this machine: after each sleep, the next call runs on "
        "cold caches. track()'s p99 stays below every peer's, and its max shows no "
        "back-pressure stall."
    ),
    "spool on: delivered events/s ≥ 0.8× spool off": (
        "across runs this ratio has ranged from 0.76 to 0.97: writing each event to the "
        "spool and acknowledging delivered runs takes CPU that, on two cores, the "
        "caller's loop and the sink also need. Both rows deliver every event."
    ),
}


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


def _between(
    summary: Summary,
    scenario: str,
    metric: str,
    ours: str,
    base: str,
    op: str,
    bound: float,
    text: str,
) -> Verdict:
    """Two of our own variants in one scenario (e.g. spool on ÷ spool off)."""
    a = median(summary, scenario, ours, metric)
    b = median(summary, scenario, base, metric)
    if a is None or b is None or b == 0:
        return Verdict(text, "n/a", None)
    ratio = a / b
    passed = ratio <= bound if op == "<=" else ratio >= bound
    return Verdict(text, f"{ratio:.2f}× ({_num(a)} vs {_num(b)})", passed)


def _handler_budget(summary: Summary) -> Verdict:
    text = "tagged record via handler ≤ NullHandler tagged + track() + 3 µs"
    parts = [
        median(summary, "front_doors", v, "mean_us")
        for v in ("handler-tagged", "null-tagged", "track")
    ]
    if None in parts:
        return Verdict(text, "n/a (module missing)", None)
    handler, null, track = (p or 0.0 for p in parts)
    budget = null + track + 3.0
    return Verdict(
        text,
        f"{handler:.2f} µs vs budget {budget:.2f} ({null:.2f} + {track:.2f} + 3)",
        handler <= budget,
    )


def _zero_lost_for(summary: Summary, sdk: str, text: str) -> Verdict:
    stats = summary.get("burst_loss", {}).get(sdk, {}).get("lost")
    if stats is None:
        return Verdict(text, "n/a", None)
    return Verdict(
        text, f"max {stats['max']:,.0f} lost over {stats['runs']} runs", stats["max"] == 0
    )


def _paced_p99(summary: Summary, delay: int, bound_us: float) -> Verdict:
    text = f"{delay} ms round trip, 2,000 events/s offered: track() p99 ≤ {bound_us:g} µs"
    value = median(summary, f"rt_paced_{delay}", "databuddy", "p99_us")
    if value is None:
        return Verdict(text, "n/a", None)
    return Verdict(text, f"{value:.1f} µs", value <= bound_us)


def check(summary: Summary) -> list[Verdict]:
    ratio = _ratio
    return [
        ratio(
            summary,
            "caller_cost",
            "mean_us",
            "otel",
            "<=",
            0.5,
            "track() caller cost ≤ 0.5× raw OTel's",
        ),
        ratio(
            summary,
            "caller_cost",
            "mean_us",
            "segment",
            "<=",
            0.3,
            "track() caller cost ≤ 0.3× segment's",
        ),
        ratio(
            summary,
            "caller_cost",
            "mean_us",
            "posthog",
            "<=",
            0.2,
            "track() caller cost ≤ 0.2× posthog's",
        ),
        ratio(
            summary,
            "throughput",
            "events_per_s",
            "otel",
            ">=",
            1.5,
            "delivered events/s ≥ 1.5× raw OTel's (batches of 100)",
        ),
        _zero_lost_for(summary, "databuddy", "zero events lost at our defaults in the burst"),
        ratio(
            summary,
            "import_time",
            "import_ms",
            "posthog",
            "<=",
            0.8,
            "import databuddy_otel ≤ 0.8× import posthog",
        ),
        ratio(
            summary,
            "import_time",
            "cold_ms",
            "posthog",
            "<=",
            0.5,
            "cold start (import + client + first track()) ≤ 0.5× posthog's",
        ),
        _difference(
            summary,
            "handler-untagged",
            "null-untagged",
            1.0,
            "untagged record via handler ≤ NullHandler + 1 µs",
        ),
        _handler_budget(summary),
        _between(
            summary,
            "front_doors",
            "mean_us",
            "handler-tagged",
            "otel-logging-tagged",
            "<=",
            0.5,
            "tagged record via handler ≤ 0.5× OpenTelemetry's logging path (OTLP/HTTP)",
        ),
        ratio(
            summary,
            "rt_burst_50",
            "events_per_s",
            "posthog",
            ">=",
            5.0,
            "50 ms round trip, defaults: delivered events/s ≥ 5× posthog's",
        ),
        ratio(
            summary,
            "rt_burst_50",
            "events_per_s",
            "segment",
            ">=",
            5.0,
            "50 ms round trip, defaults: delivered events/s ≥ 5× segment's",
        ),
        _paced_p99(summary, 50, 50.0),
        ratio(
            summary,
            "rt_burst_0",
            "events_per_s",
            "otel",
            ">=",
            2.0,
            "0 ms round trip, defaults: delivered events/s ≥ 2× raw OTel's (100-event batches)",
        ),
        _between(
            summary,
            "caller_cost",
            "mean_us",
            "databuddy-spool",
            "databuddy",
            "<=",
            1.3,
            "spool on: track() caller cost ≤ 1.3× spool off",
        ),
        _between(
            summary,
            "throughput",
            "events_per_s",
            "databuddy-spool",
            "databuddy",
            ">=",
            0.8,
            "spool on: delivered events/s ≥ 0.8× spool off",
        ),
        _zero_lost_for(summary, "databuddy-spool", "spool on: zero events lost in the burst"),
    ]
