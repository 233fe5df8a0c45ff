"""Next run times by cronsim (Healthchecks.io's implementation of Debian
cron's rules), the reference errsnap's schedules are compared with.

    cron_next.py   reads JSON from stdin: [{"expr", "tz", "start", "n"}]
                   (start: seconds since the Unix epoch); prints JSON: for
                   each, {"times": the next n run times in seconds, "brute":
                   for a job by real time (a star in its minute or hour
                   field), the first minute after the start whose local time
                   matches cronsim's own parsed fields, found minute by
                   minute (null: none within 8 days, or a wall-clock job)},
                   or {"error": ...}
"""

import json
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from cronsim import CronSim


def first_match(it, start, tz):
    t = start.replace(second=0, microsecond=0)
    for _ in range(8 * 24 * 60):
        t += timedelta(minutes=1)
        local = t.astimezone(tz)
        if (local.minute in it.minutes and local.hour in it.hours
                and local.month in it.months and it.match_day(local.date())):
            return int(t.timestamp())
    return None


def main():
    out = []
    for case in json.load(sys.stdin):
        try:
            start = datetime.fromtimestamp(case["start"], tz=timezone.utc)
            it = CronSim(case["expr"], start.astimezone(ZoneInfo(case["tz"])))
            brute = None if it.fixup_tz is not None else first_match(it, start, ZoneInfo(case["tz"]))
            out.append({"times": [int(next(it).timestamp()) for _ in range(case["n"])], "brute": brute})
        except Exception as e:  # noqa: BLE001 - the test reports it
            out.append({"error": "%s: %s" % (type(e).__name__, e)})
    print(json.dumps(out))


main()
