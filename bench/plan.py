"""What a run measures: the scenarios, their metrics, sizes and repeats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.scenarios.front_doors import VARIANTS

PEERS = ("otel", "segment", "posthog", "requests")
SDKS = ("databuddy", "databuddy-spool", *PEERS)
QUEUED_SDKS = ("databuddy", "otel", "segment", "posthog")  # requests/event has no queue
ROUND_TRIP_SDKS = ("databuddy", "otel", "segment", "posthog")
IMPORT_SDKS = ("databuddy", *PEERS)
#: Emulated round trips (ms) of scenario 7, and those scenario 8 paces traffic over.
DELAYS = (0, 20, 50, 150)
PACED_DELAYS = (50, 150)


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    fmt: str = "{:.1f}"
    better: str = ""  # "lower", "higher" or "" (informative)
    kind: str = "number"  # or "bool": shown as yes/no (yes only if every run said yes)


@dataclass(frozen=True)
class Scenario:
    key: str
    module: str
    title: str
    measures: str
    metrics: tuple[Metric, ...]
    sdks: tuple[str, ...]
    repeats: int
    params: dict[str, Any]
    per_sdk: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    slow_repeats: dict[str, int] = field(default_factory=dict)  # fewer runs for slow peers

    def params_for(self, sdk: str) -> dict[str, Any]:
        return {**self.params, **self.per_sdk.get(sdk, {})}

    def repeats_for(self, sdk: str) -> int:
        return min(self.repeats, self.slow_repeats.get(sdk, self.repeats))


@dataclass(frozen=True)
class Sizes:
    n: int
    n_single: int  # requests/event: one POST per event costs ~0.4 ms of caller time
    repeats: int
    slow_repeats: int  # posthog and requests/event in scenarios 1-3
    burst_repeats: int
    import_repeats: int
    memory_n: int
    memory_repeats: int
    front_n: int
    front_repeats: int
    rt_n: int  # events per burst over a round trip
    rt_rate: int  # events/s offered in the paced runs
    rt_seconds: float
    rt_repeats: int
    burst_n: int = 0  # scenario 3's N when it differs from n


FULL = Sizes(100_000, 2_000, 3, 1, 2, 5, 50_000, 1, 20_000, 5, 5_000, 2_000, 2.0, 2, 100_000)
QUICK = Sizes(10_000, 1_000, 2, 1, 1, 3, 10_000, 1, 5_000, 1, 2_000, 2_000, 1.0, 1)


def build(sizes: Sizes, url: str, down_url: str) -> list[Scenario]:
    return [*_main(sizes, url, down_url), *_round_trips(sizes, url)]


def _round_trips(sizes: Sizes, url: str) -> list[Scenario]:
    latency = (
        Metric("p50_us", "track p50 µs", "{:.1f}"),
        Metric("p99_us", "track p99 µs", "{:.1f}"),
        Metric("max_us", "track max µs", "{:,.0f}"),
        Metric("lost", "lost", "{:,.0f}"),
    )
    notes = (
        "Every SDK at its own defaults; raw OTel with 100-event batches.",
        f"{sizes.rt_repeats} repeat(s) per SDK.",
    )
    bursts = [
        Scenario(
            f"rt_burst_{delay}",
            "round_trip",
            f"7. Round trip {delay} ms: a burst at defaults",
            f"N={sizes.rt_n:,} events as fast as possible, each upload answered {delay} ms "
            "late: events that arrived, first call → last arrival",
            (Metric("events_per_s", "events/s", "{:,.0f}", "higher"), *latency),
            ROUND_TRIP_SDKS,
            sizes.rt_repeats,
            {"url": url, "n": sizes.rt_n, "delay_ms": delay, "mode": "burst"},
            notes=notes,
        )
        for delay in DELAYS
    ]
    paced = [
        Scenario(
            f"rt_paced_{delay}",
            "round_trip",
            f"8. Round trip {delay} ms: {sizes.rt_rate:,} events/s offered",
            f"{sizes.rt_rate:,} events/s for {sizes.rt_seconds:g} s, uploads answered "
            f"{delay} ms late: does track() ever stall?",
            (Metric("p99_us", "track p99 µs", "{:.1f}", "lower"), *latency[:1], *latency[2:]),
            (*ROUND_TRIP_SDKS, "floor"),
            sizes.rt_repeats,
            {
                "url": url,
                "rate": sizes.rt_rate,
                "seconds": sizes.rt_seconds,
                "delay_ms": delay,
                "mode": "paced",
            },
            notes=(
                *notes,
                "The floor row is json.dumps of the same properties in the same paced loop: "
                "what a call costs on this machine after the caller slept (cold caches).",
            ),
        )
        for delay in PACED_DELAYS
    ]
    return [*bursts, *paced]


def _main(sizes: Sizes, url: str, down_url: str) -> list[Scenario]:
    n, single = sizes.n, {"requests": {"n": sizes.n_single}}
    single_note = (
        f"requests/event sends N={sizes.n_single:,} (one synchronous POST per event; "
        f"{n:,} would take minutes)."
    )
    slow = {"posthog": sizes.slow_repeats, "requests": sizes.slow_repeats}
    slow_note = (
        f"posthog and requests/event: {min(sizes.slow_repeats, sizes.repeats)} repeat(s) "
        "(the slowest peers), the others {}."
    )
    memory_note = f"{sizes.memory_repeats} repeat(s) per SDK, to keep the run short."
    bounded_note = (
        "bounded: the second half of the N events grew RSS by at most max(1 MiB, 10 % of "
        "the total). Default queues: ours 1,000, raw OTel 2,048, segment and posthog 10,000."
    )
    if sizes.memory_n < 20_000:
        bounded_note += " With this N, segment and posthog have not reached their bound yet."
    per_event_us = Metric("mean_us", "mean µs", "{:.2f}", "lower")
    return [
        Scenario(
            "caller_cost",
            "caller_cost",
            "1. Caller cost of one track()/capture()",
            f"µs per call, timed call by call; batches of 100, queue ≥ N={n:,}, sink up",
            (per_event_us, Metric("p50_us", "p50 µs", "{:.2f}"), Metric("p99_us", "p99 µs")),
            SDKS,
            sizes.repeats,
            {"url": url, "n": n},
            single,
            (single_note, slow_note.format(sizes.repeats)),
            slow,
        ),
        Scenario(
            "throughput",
            "throughput",
            "2. Delivered events per second, end to end",
            f"N={n:,} events, batches of 100: first call → sink counted N (count checked)",
            (
                Metric("events_per_s", "events/s", "{:,.0f}", "higher"),
                Metric("delivered", "delivered", "{:,.0f}"),
            ),
            SDKS,
            sizes.repeats,
            {"url": url, "n": n},
            single,
            (single_note, slow_note.format(sizes.repeats)),
            slow,
        ),
        Scenario(
            "burst_loss",
            "burst_loss",
            "3. Events lost in a burst at default settings",
            f"N={sizes.burst_n or n:,} as fast as possible, documented shutdown, then the "
            "sink's count",
            (
                Metric("lost", "lost", "{:,.0f}"),
                Metric("lost_pct", "lost %", "{:.2f}"),
                Metric("send_s", "send s", "{:.2f}"),
            ),
            SDKS,
            sizes.burst_repeats,
            {"url": url, "n": sizes.burst_n or n},
            single,
            (single_note, f"{sizes.burst_repeats} repeat(s) for every SDK (the longest scenario)."),
        ),
        Scenario(
            "import_time",
            "import_time",
            "4. Import time and cold start",
            "ms in a fresh interpreter: the import statement; cold start = import + client"
            " + first event queued",
            (
                Metric("import_ms", "import ms", "{:.0f}", "lower"),
                Metric("cold_ms", "cold start ms", "{:.0f}", "lower"),
            ),
            IMPORT_SDKS,
            sizes.import_repeats,
            {"url": url},
        ),
        Scenario(
            "memory_queued",
            "memory",
            "5a. Memory per queued event (sink down)",
            f"RSS growth / N for N={sizes.memory_n:,} events held in a queue sized for all",
            (
                Metric("bytes_per_event", "bytes/event", "{:,.0f}", "lower"),
                Metric("rss_delta_mb", "RSS Δ MiB"),
            ),
            QUEUED_SDKS,
            sizes.memory_repeats,
            {"down_url": down_url, "n": sizes.memory_n, "variant": "queued"},
            notes=(memory_note,),
        ),
        Scenario(
            "memory_defaults",
            "memory",
            "5b. RSS at default settings with the sink down",
            f"RSS growth after N={sizes.memory_n:,} events; bounded = flat second half",
            (
                Metric("rss_delta_mb", "RSS Δ MiB", "{:.1f}", "lower"),
                Metric("second_half_mb", "2nd-half Δ MiB"),
                Metric("bounded", "bounded", kind="bool"),
            ),
            QUEUED_SDKS,
            sizes.memory_repeats,
            {"down_url": down_url, "n": sizes.memory_n, "variant": "defaults"},
            notes=(memory_note, bounded_note),
        ),
        Scenario(
            "front_doors",
            "front_doors",
            "6. Logging front doors, per record",
            f"µs per record/event, N={sizes.front_n:,}; baselines in the same table",
            (per_event_us, Metric("p50_us", "p50 µs", "{:.2f}")),
            VARIANTS,
            sizes.front_repeats,
            {"url": url, "n": sizes.front_n},
            notes=(
                f"N={sizes.front_n:,} and {sizes.front_repeats} repeat(s) per variant "
                "(11 variants) to keep the run short.",
                "span-export-* is the exporter's own time per span event, HTTP POST "
                "included (it sends on the span processor's thread).",
            ),
        ),
    ]
