#!/usr/bin/env python3
"""Bugsink (PyPI `bugsink`), a real Sentry-compatible server, for errsnap's
forwarding tests (tests/forward.rs). Everything lives in the directory given;
the server listens on loopback only.

    bugsink_server.py template DIR             migrate once into DIR (reused)
    bugsink_server.py prepare DIR PORT TEMPLATE [QUOTA]
                                               a server's settings and
                                               database (copied from the
                                               template), one project;
                                               prints DSN=...
    bugsink_server.py serve DIR PORT           runs it (replaces this process)
    bugsink_server.py query DIR                prints the stored issues and
                                               events as JSON
"""
import json
import os
import shutil
import subprocess
import sys

BIN = os.path.dirname(sys.executable)
DBS = ("db.sqlite3", "snappea.sqlite3")


def write_conf(d, port, quota=None):
    subprocess.run(
        [os.path.join(BIN, "bugsink-create-conf"), "--template", "local",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=d, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(d, "bugsink_conf.py"), "a") as f:
        f.write('\nBUGSINK["PHONEHOME"] = False\n')
        f.write('BUGSINK["INGEST_STORE_BASE_DIR"] = %r\n' % os.path.join(d, "ingestion"))
        # Events that do not match the Relay event schema are not stored:
        # the tests see a schema error as a missing event.
        f.write('BUGSINK["VALIDATE_ON_DIGEST"] = "strict"\n')
        # A crash's minidump (ERRSNAP_SENTRY_MINIDUMP) is read and merged
        # into its event (off by default in Bugsink).
        f.write('BUGSINK["FEATURE_MINIDUMPS"] = True\n')
        if quota:
            f.write('BUGSINK["MAX_EVENTS_PER_PROJECT_PER_5_MINUTES"] = %d\n' % int(quota))


def django(d):
    os.chdir(d)
    sys.path.insert(0, d)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bugsink_conf"
    import django as dj
    dj.setup()


def template(d):
    os.makedirs(d, exist_ok=True)
    if os.path.exists(os.path.join(d, "ready")):
        return
    write_conf(d, 9)
    django(d)
    from django.core.management import call_command
    call_command("migrate", verbosity=0)
    open(os.path.join(d, "ready"), "w").close()


def prepare(d, port, tmpl, quota):
    write_conf(d, port, quota)
    for name in DBS:
        src = os.path.join(tmpl, name)
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(d, name))
    django(d)
    from django.core.management import call_command
    call_command("migrate", verbosity=0)
    from teams.models import Team
    from projects.models import Project
    team = Team.objects.create(name="errsnap-tests")
    p = Project.objects.create(team=team, name="errsnap")
    print("DSN=" + p.dsn, flush=True)


def query(d):
    django(d)
    from events.models import Event
    from issues.models import Issue, Grouping
    issues = []
    for i in Issue.objects.all():
        issues.append({
            "id": str(i.id),
            "count": i.digested_event_count,
            "title": i.title(),
            "groupings": [g.grouping_key for g in Grouping.objects.filter(issue=i)],
        })
    events = []
    for e in Event.objects.all().order_by("ingested_at"):
        data = e.data
        if isinstance(data, str):
            data = json.loads(data)
        events.append({
            "event_id": e.event_id.hex,
            "issue": str(e.issue_id),
            "type": e.calculated_type,
            "value": e.calculated_value,
            "level": e.level,
            "release": e.release,
            "environment": e.environment,
            "server_name": e.server_name,
            "logger": e.logger,
            "platform": e.platform,
            "data": data,
        })
    print(json.dumps({"issues": issues, "events": events}))


def main():
    cmd, d = sys.argv[1], os.path.abspath(sys.argv[2])
    if cmd == "template":
        template(d)
    elif cmd == "prepare":
        prepare(d, int(sys.argv[3]), os.path.abspath(sys.argv[4]),
                sys.argv[5] if len(sys.argv) > 5 else None)
    elif cmd == "serve":
        os.environ["DJANGO_SETTINGS_MODULE"] = "bugsink_conf"
        os.environ["PYTHONPATH"] = d
        os.chdir(d)
        os.execv(os.path.join(BIN, "bugsink-manage"),
                 [os.path.join(BIN, "bugsink-manage"), "runserver",
                  "127.0.0.1:%d" % int(sys.argv[3]), "--noreload"])
    elif cmd == "query":
        query(d)
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
