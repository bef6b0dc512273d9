"""Starts a `weir standalone` on a fresh `weir init` project for the API checks: a free port on
127.0.0.1, the admin password `weir init` printed, and the log for when a check fails."""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time


class Weir:
    def __init__(self, weir):
        self.weir = os.path.abspath(weir)
        self.tmp = tempfile.mkdtemp(prefix="weir-api-check-")
        self.proj = os.path.join(self.tmp, "proj")
        out = subprocess.run([self.weir, "init", self.proj], check=True, capture_output=True, text=True).stdout
        self.password = re.search(r"login: admin / (\S+)", out).group(1)
        self.log = open(os.path.join(self.tmp, "standalone.log"), "w+")
        env = dict(os.environ, WEIR__WEBSERVER__PORT="0", WEIR__WEBSERVER__HOST="127.0.0.1", NO_COLOR="1")
        self.proc = subprocess.Popen([self.weir, "--project", self.proj, "standalone"], stdout=subprocess.DEVNULL,
                                     stderr=self.log, stdin=subprocess.DEVNULL, env=env)
        self.base = self._wait_for_url()

    def _wait_for_url(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.log.seek(0)
            m = re.search(r"web UI and REST API: (http://\S+)", self.log.read())
            if m:
                return m.group(1)
            if self.proc.poll() is not None:
                raise RuntimeError("weir standalone exited early:\n" + self.tail())
            time.sleep(0.05)
        raise RuntimeError("weir standalone printed no URL in 60 s")

    def token(self, username="admin", password=None):
        import json
        import urllib.request
        req = urllib.request.Request(self.base + "/auth/token", method="POST",
                                     data=json.dumps({"username": username,
                                                      "password": password or self.password}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as resp:
            assert resp.status == 201, resp.status
            return json.load(resp)["access_token"]

    def tail(self):
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is not None:
            sys.stderr.write("---- weir standalone log ----\n" + self.tail())
        self.stop()
