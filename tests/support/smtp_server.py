"""A real SMTP server for errsnap's tests: aiosmtpd on 127.0.0.1.

Usage: smtp_server.py PORT OUT.jsonl [--tls CERT KEY] [--auth USER PASSWORD]

Every accepted message is appended to OUT.jsonl as one JSON object (sender,
recipients, the raw message, the login used, whether TLS was on). With
--tls the server offers STARTTLS and requires it; with --auth it requires a
login (PLAIN or LOGIN) after STARTTLS. Prints "READY" once it listens and
stops when its standard input closes (the test that started it ended).
"""

import json
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Recorder:
    def __init__(self, out):
        self.out = out

    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data
        if isinstance(login, bytes):
            login = login.decode("utf-8", "replace")
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "login": login,
            "tls": session.ssl is not None,
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"


def main():
    args = sys.argv[1:]
    port, out = int(args[0]), args[1]
    kwargs = {}
    rest = args[2:]
    while rest:
        flag = rest.pop(0)
        if flag == "--tls":
            cert, key = rest.pop(0), rest.pop(0)
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cert, key)
            kwargs["tls_context"] = ctx
            kwargs["require_starttls"] = True
        elif flag == "--auth":
            user, password = rest.pop(0), rest.pop(0)

            def check(server, session, envelope, mechanism, data):
                ok = (
                    isinstance(data, LoginPassword)
                    and data.login.decode() == user
                    and data.password.decode() == password
                )
                return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

            kwargs["authenticator"] = check
            kwargs["auth_required"] = True
            kwargs["auth_require_tls"] = "tls_context" in kwargs
        else:
            raise SystemExit(f"unknown flag {flag}")
    controller = Controller(Recorder(out), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print("READY", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
