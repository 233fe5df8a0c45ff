"""Draws BENCHMARKS.png from benches/results.json (matplotlib), beside the
run recorded before issue #16 (benches/results-before-16.json)."""
import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

here = pathlib.Path(__file__).parent
r = json.loads((here / "results.json").read_text())
old_path = here / "results-before-16.json"
old = json.loads(old_path.read_text()) if old_path.exists() else None
cc = r["caller_cost"]


def get(res, key):
    c = res["caller_cost"]
    if key == "errsnap_walk":
        return c.get("unwinders", {}).get("errsnap_walk")
    return c.get(key)


rows = [
    ("tracing-appender\n(a line, no stack)", "tracing_appender_error"),
    ("backtrace crate's\nstack walk", "stack_walk_floor"),
    ("errsnap's stack walk\n(framehop, #16)", "errsnap_walk"),
    ("errsnap\nlogger.error", "errsnap_error"),
    ("errsnap\ncapture_error", "errsnap_capture_error"),
    ("errsnap\npush_to_table", "errsnap_push_to_table"),
    ("sentry\n(stack, no network)", "sentry_capture_message_with_stack"),
    ("original design,\nported naively", "naive_original_design"),
]
fig, ax = plt.subplots(figsize=(10, 6.2), dpi=110)
h = 0.38
ys = list(range(len(rows)))
new_med = [get(r, k)["median_ns"] / 1000 for _, k in rows]
new_p99 = [get(r, k)["p99_ns"] / 1000 for _, k in rows]
ax.barh([y - h / 2 for y in ys], new_med, height=h, color="#2f7d32", label="now (median)")
ax.errorbar(new_p99, [y - h / 2 for y in ys], xerr=0, fmt="|", color="black", markersize=9, label="p99")
if old:
    old_med = [(get(old, k) or {}).get("median_ns", 0) / 1000 for _, k in rows]
    ax.barh([y + h / 2 for y in ys], old_med, height=h, color="#b0bec5", label="before #16 (median)")
for y, m, p in zip(ys, new_med, new_p99):
    ax.text(max(m, p) * 1.25, y - h / 2, f"{m:,.2f} µs (p99 {p:,.1f})", va="center", fontsize=8)
ax.set_yticks(ys)
ax.set_yticklabels([n for n, _ in rows])
ax.set_xscale("log")
ax.invert_yaxis()
ax.set_xlabel("caller-side time per captured error, µs (log scale; bar = median, tick = p99)")
ax.set_title("Cost on the caller's thread, ~30-frame stack, one run each, 2 cores")
ax.set_xlim(right=max(new_p99) * 30)
ax.legend(loc="center right", fontsize=8)
fig.tight_layout()
fig.savefig(here.parent / "BENCHMARKS.png")
print("wrote BENCHMARKS.png")
