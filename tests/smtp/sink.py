"""A real SMTP server for passlink's delivery tests (aiosmtpd).

Every message accepted is written to OUT_DIR as one JSON file
({"mail_from", "rcpt_tos", "data"}; data is the raw message), atomically (written to a
temporary name, then renamed), so a test can poll the directory.

Recipients whose local part starts with "reject" are refused with 550 (a permanent failure).

Usage: sink.py --host 127.0.0.1 --port 2525 --out OUT_DIR
Prints "READY <port>" once it accepts connections; stops on SIGTERM/SIGINT.
"""

import argparse
import json
import os
import signal
import threading
import time

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, out):
        self.out = out
        self.n = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@", 1)[0].lower().startswith("reject"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.n += 1
            name = f"{time.time_ns()}-{self.n:06d}.json"
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.original_content.decode("utf-8", "replace"),
        }
        tmp = os.path.join(self.out, "." + name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.out, name))
        return "250 2.0.0 OK queued"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    c = Controller(Handler(a.out), hostname=a.host, port=a.port, decode_data=False)
    c.start()
    print(f"READY {a.port}", flush=True)
    stop.wait()
    c.stop()


if __name__ == "__main__":
    main()
