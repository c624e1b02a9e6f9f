#!/usr/bin/env python3
"""The workspace gateway against the proxy people use today, side by side in one run.

Three paths to the same static upstream (`qingting-loadgen upstream`: `200 ok`, and a WebSocket
echo), loaded by wrk with keep-alive connections:

  direct   wrk -> upstream (TCP)
  chp      wrk -> configurable-http-proxy 4.6.3 (JupyterHub's proxy, from npm) -> upstream (TCP)
  qingting wrk -> qingting (workspace host, cookie, session check) -> the workspace's upstream,
           a sandboxed process of a workspace made from a template that runs the same program
           (on its Unix socket, as every local workspace's IDE)
  preview  wrk -> qingting (the port preview host 8000-<user>-<ws>, cookie, session check) ->
           the same program listening on TCP port 8000 inside that workspace (reached from
           inside its network namespace; needs the server to run as root)

For each: requests/s and p50 latency at 1 and 16 connections, and the p50 round trip of a small
WebSocket message, over several rounds (the machine is shared: ranges, not single numbers).

usage: bench/gateway.py [--rounds 3] [--seconds 5] [--profile]
--profile: instead of the table, samples the server (perf, cpu-clock) during one connection's
load through the gateway and prints where the time goes.
Needs: a built `qingting` (release preferred: QINGTING_BIN, else target/release); installs wrk
(Debian) and configurable-http-proxy (npm, into ~/.cache/qingting/bench-node) when missing.
"""
import argparse, json, os, re, shutil, signal, subprocess, sys, tempfile, time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workspaces import ROOT, TARGET, Client, find_bin, free_port  # noqa: E402
from lecture import stand_in_editors  # noqa: E402

CHP_VERSION = "4.6.3"
NODE_DIR = os.path.expanduser("~/.cache/qingting/bench-node")


def ensure_tools():
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL)
    chp = f"{NODE_DIR}/node_modules/.bin/configurable-http-proxy"
    if not os.path.exists(chp):
        os.makedirs(NODE_DIR, exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--prefix", NODE_DIR,
                        f"configurable-http-proxy@{CHP_VERSION}"], check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "qingting-loadgen"], cwd=ROOT, check=True)
    return chp, f"{TARGET}/release/qingting-loadgen"


def wait_port(port, host="localhost", path="/", timeout=30):
    c = Client(port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if c.request("GET", host, path)[0] < 500:
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"nothing answered on port {port}")


def to_us(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1, "ms": 1000, "s": 1e6}[unit]


def wrk(url, connections, seconds, headers):
    threads = min(2, connections)
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_us(re.search(r"50%\s+([\d.]+(?:us|ms|s))", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        sys.exit(f"{url}: {errors.group(1)} error responses\n{out}")
    return rps, p50


def wsping(loadgen, port, host, headers, count=2000):
    cmd = [loadgen, "wsping", "--tcp", f"127.0.0.1:{port}", "--host", host, "--count", str(count)]
    for h in headers:
        cmd += ["--header", h]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)["p50_us"]


def span(values, fmt):
    lo, hi = min(values), max(values)
    return fmt(lo) if fmt(lo) == fmt(hi) else f"{fmt(lo)}–{fmt(hi)}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()

    chp_bin, loadgen = ensure_tools()
    binary = find_bin()
    work = tempfile.mkdtemp(prefix="qingting-gwbench-")
    procs = []
    c, ws_id = None, None

    def spawn(cmd, log, env=None):
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(f"{work}/{log}", "w"))
        procs.append(p)
        return p

    try:
        up_port, chp_port, chp_api, qt_port = free_port(), free_port(), free_port(), free_port()
        spawn([loadgen, "upstream", "--tcp", f"127.0.0.1:{up_port}"], "upstream.log")
        spawn([chp_bin, "--ip", "127.0.0.1", "--port", str(chp_port), "--api-ip", "127.0.0.1",
               "--api-port", str(chp_api), "--default-target", f"http://127.0.0.1:{up_port}",
               "--log-level", "error"], "chp.log")

        # The same program as a workspace: a template whose "IDE" is the static upstream.
        editors, templates = stand_in_editors(
            work, loadgen, "static",
            # The same program on a port inside the workspace too, for the preview row.
            '["/bin/sh", "-c", "{editors}/bench-upstream/qingting-loadgen upstream --tcp '
            '127.0.0.1:8000 & exec {editors}/bench-upstream/qingting-loadgen upstream --unix {socket}"]')
        data = f"{work}/data"
        env = dict(os.environ, QINGTING_DATA_DIR=data, QINGTING_LISTEN=f"127.0.0.1:{qt_port}",
                   QINGTING_PUBLIC_URL=f"http://localhost:{qt_port}", QINGTING_EDITORS_DIR=editors,
                   QINGTING_TEMPLATES_FILE=templates)
        env.pop("RUST_LOG", None)  # the default a user runs with
        server = spawn([binary, "serve"], "server.log", env)
        for port in (up_port, chp_port):
            wait_port(port)
        wait_port(qt_port, path="/healthz")

        c = Client(qt_port)
        c.api("/api/register", {"username": "bench", "password": "correct horse battery"})
        s, row = c.api("/api/workspaces/create", {"name": "up", "template": "static"})
        assert s == 200, (s, row)
        ws_id = row["id"]
        host = "bench-up.localhost"
        s, h, _ = c.request("GET", "localhost", "/open/bench/up")
        loc = urllib.parse.urlparse(h["location"])
        c.request("GET", host, f"{loc.path}?{loc.query}", headers={"Referer": f"http://localhost:{qt_port}/"})
        while c.request("GET", host, "/healthz")[0] != 200:
            time.sleep(0.05)
        cookie = "Cookie: " + "; ".join(f"{k}={v}" for k, v in c.jar[host].items())
        preview = f"8000-{host}"
        s, h, _ = c.request("GET", "localhost", "/open/bench/up?port=8000")
        loc = urllib.parse.urlparse(h["location"])
        c.request("GET", preview, f"{loc.path}?{loc.query}", headers={"Referer": f"http://localhost:{qt_port}/"})
        preview_cookie = "Cookie: " + "; ".join(f"{k}={v}" for k, v in c.jar.get(preview, {}).items())
        previews = False
        for _ in range(100):
            previews = c.request("GET", preview, "/healthz")[0] == 200
            if previews:
                break
            time.sleep(0.05)
        if not previews:
            print("port previews are not available here (not root?): no preview row", file=sys.stderr)

        if a.profile:
            perf = subprocess.Popen(["perf", "record", "-F", "4000", "-e", "cpu-clock", "-g", "-o", f"{work}/perf.data",
                                     "-p", str(server.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            print(wrk(f"http://127.0.0.1:{qt_port}/healthz", 1, a.seconds, [f"Host: {host}:{qt_port}", cookie]))
            perf.send_signal(signal.SIGINT)
            perf.wait()
            report = subprocess.run(["perf", "report", "-i", f"{work}/perf.data", "--no-children", "--stdio",
                                     "--sort", "dso,symbol", "-g", "none", "--percent-limit", "0.7"],
                                    capture_output=True, text=True).stdout
            print(report)
            return

        paths = {
            "direct": (up_port, "localhost", []),
            f"configurable-http-proxy {CHP_VERSION}": (chp_port, "localhost", []),
            "qingting gateway": (qt_port, f"{host}:{qt_port}", [cookie]),
        }
        if previews:
            paths["qingting port preview"] = (qt_port, f"{preview}:{qt_port}", [preview_cookie])
        results = {p: {"1": [], "16": [], "p50_1": [], "ws": []} for p in paths}
        for r in range(a.rounds):
            for label, (port, hosthdr, extra) in paths.items():
                url = f"http://127.0.0.1:{port}/healthz"
                hdrs = [f"Host: {hosthdr}", *extra]
                rps1, p50 = wrk(url, 1, a.seconds, hdrs)
                rps16, _ = wrk(url, 16, a.seconds, hdrs)
                ws = wsping(loadgen, port, hosthdr, extra)
                res = results[label]
                res["1"].append(rps1)
                res["16"].append(rps16)
                res["p50_1"].append(p50)
                res["ws"].append(ws)
            print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)

        print(f"binary: {binary}\nmachine: {os.cpu_count()} cores; {a.rounds} rounds of {a.seconds} s per cell; "
              "ranges are min–max over rounds\n")
        print(f"{'path':<32} {'req/s @1':>15} {'p50 @1 (µs)':>13} {'req/s @16':>15} {'WS RTT p50 (µs)':>16}")
        k = lambda v: f"{v / 1000:.1f}k"
        us = lambda v: f"{v:.0f}"
        for label, res in results.items():
            print(f"{label:<32} {span(res['1'], k):>15} {span(res['p50_1'], us):>13} "
                  f"{span(res['16'], k):>15} {span(res['ws'], us):>16}")
        chp, qt, direct = (results[f"configurable-http-proxy {CHP_VERSION}"], results["qingting gateway"],
                           results["direct"])
        med = lambda v: sorted(v)[len(v) // 2]
        print(f"\nqingting / chp, requests/s: {med(qt['1']) / med(chp['1']):.1f}x at 1 connection, "
              f"{med(qt['16']) / med(chp['16']):.1f}x at 16 (medians)")
        print(f"added p50 latency over direct at 1 connection: qingting {med(qt['p50_1']) - med(direct['p50_1']):.0f} µs, "
              f"chp {med(chp['p50_1']) - med(direct['p50_1']):.0f} µs")
        print(f"added WebSocket round trip over direct: qingting {med(qt['ws']) - med(direct['ws']):.0f} µs, "
              f"chp {med(chp['ws']) - med(direct['ws']):.0f} µs")
        if previews:
            pv = results["qingting port preview"]
            print(f"port preview / the workspace's main host, requests/s: {med(pv['1']) / med(qt['1']):.2f}x at 1 "
                  f"connection, {med(pv['16']) / med(qt['16']):.2f}x at 16 (medians)")
    finally:
        # Workspaces outlive their server (it adopts them after a restart): delete ours first.
        if c and ws_id is not None:
            c.api("/api/workspaces/action", {"id": ws_id, "action": "delete"})
            for _ in range(100):
                if not c.api("/api/workspaces/list")[1]["workspaces"]:
                    break
                time.sleep(0.1)
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
