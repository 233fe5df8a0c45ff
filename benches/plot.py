"""Draws BENCHMARKS.png from benches/results.json (matplotlib)."""
import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

here = pathlib.Path(__file__).parent
r = json.loads((here / "results.json").read_text())
cc = r["caller_cost"]
rows = [
    ("tracing-appender\n(a line, no stack)", "tracing_appender_error"),
    ("stack walk alone\n(the floor)", "stack_walk_floor"),
    ("errsnap\nlogger.error", "errsnap_error"),
    ("errsnap\ncapture_error", "errsnap_capture_error"),
    ("errsnap\npush_to_table", "errsnap_push_to_table"),
    ("sentry\n(stack, no network)", "sentry_capture_message_with_stack"),
    ("original design,\nported naively", "naive_original_design"),
]
names = [n for n, _ in rows]
med = [cc[k]["median_ns"] / 1000 for _, k in rows]
p99 = [cc[k]["p99_ns"] / 1000 for _, k in rows]
colors = ["#9aa5b1", "#9aa5b1", "#2f7d32", "#2f7d32", "#2f7d32", "#c0392b", "#7f8c8d"]
fig, ax = plt.subplots(figsize=(10, 5.2), dpi=110)
bars = ax.barh(names, med, color=colors)
ax.errorbar(p99, names, xerr=0, fmt="|", color="black", markersize=14, label="p99")
ax.set_xscale("log")
ax.invert_yaxis()
ax.set_xlabel("caller-side time per captured error, µs (log scale; bar = median, tick = p99)")
ax.set_title("Cost on the caller's thread, ~30-frame stack, one run, 2 cores")
for b, m, p in zip(bars, med, p99):
    ax.text(max(m, p) * 1.25, b.get_y() + b.get_height() / 2, f"{m:,.2f} µs (p99 {p:,.1f})", va="center", fontsize=8)
ax.set_xlim(right=max(p99) * 30)
ax.legend(loc="upper right")
fig.tight_layout()
fig.savefig(here.parent / "BENCHMARKS.png")
print("wrote BENCHMARKS.png")
