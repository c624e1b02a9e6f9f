#!/usr/bin/env python3
"""Workspace benchmarks for QingTing Studio, printed side by side in one run.

1. create -> first 200 through the gateway, per template: p50 and p95 over N runs (default 10).
   The clock starts before the create request and stops at the first 200 from the IDE's
   health path on the workspace host (through the gateway, with the workspace cookie).
2. the gateway against direct access to the same IDE: requests/s and latency of GET
   <health path> through the gateway (TCP, Host routing, cookie check, proxy to the Unix
   socket) and straight on the IDE's Unix socket, with the same load generator.

   With --pool N, each template is measured twice in the same run: as above (cold), and with
   a warm pool of N IDEs per template (the server restarted with `workspaces.pool`), each run
   waiting until the pool has an IDE ready, as it would between a class's students.

usage: bench/workspaces.py [--runs 10] [--seconds 10] [--connections 16] [--pool 0]
       [--templates vscode-python,vscode-node,jupyter-python]
Needs: a built `qingting` (release preferred: QINGTING_BIN, else target/release, else debug),
the editors (`qingting editors install`, QINGTING_EDITORS_DIR), qingting-loadgen (built here).
"""
import argparse, http.client, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/qingting/target"))


def find_bin():
    for p in [os.environ.get("QINGTING_BIN"), f"{TARGET}/release/qingting", f"{TARGET}/debug/qingting"]:
        if p and os.path.exists(p):
            return p
    sys.exit("no qingting binary: run `cargo build --release -p server` first")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Client:
    """Plain HTTP to 127.0.0.1:port with an explicit Host, cookies kept per host."""

    def __init__(self, port):
        self.port, self.jar = port, {}

    def request(self, method, host, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = {"Host": f"{host}:{self.port}", **(headers or {})}
        jar = self.jar.get(host, {})
        if jar:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        if body is not None:
            body = urllib.parse.urlencode(body)
            h["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=h)
        res = conn.getresponse()
        data = res.read()
        for k, v in res.getheaders():
            if k.lower() == "set-cookie":
                name, _, val = v.split(";")[0].partition("=")
                if val and "Max-Age=0" not in v:
                    self.jar.setdefault(host, {})[name] = val
        conn.close()
        return res.status, dict((k.lower(), v) for k, v in res.getheaders()), data

    def api(self, path, form=None):
        s, _, data = self.request("POST", "localhost", path, form or {})
        return s, (json.loads(data) if data else None)


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round((len(v) - 1) * p)))]


def start_server(binary, data, port, editors, pool):
    with open(f"{data}/config.toml", "w") as f:
        f.write("[workspaces]\nmax_per_user = 100\nmax_running_per_user = 10\n")
        f.write(f"pool = {json.dumps(pool)}\n")
    env = dict(os.environ, QINGTING_DATA_DIR=data, QINGTING_LISTEN=f"127.0.0.1:{port}",
               QINGTING_PUBLIC_URL=f"http://localhost:{port}", QINGTING_EDITORS_DIR=editors,
               QINGTING_CONFIG=f"{data}/config.toml", RUST_LOG="warn")
    server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(f"{data}/server.log", "a"))
    c = Client(port)
    for _ in range(600):
        try:
            if c.request("GET", "localhost", "/healthz")[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit("the server did not start; see its log")


def stop_server(server):
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)


def wait_pooled(c, tid, timeout=120):
    """Until the pool has an IDE of `tid` ready to take."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, _, body = c.request("GET", "localhost", "/healthz")
        pool = {p["template"]: p for p in json.loads(body)["pool"]}
        if pool[tid]["ready"] >= 1:
            return
        time.sleep(0.05)
    sys.exit(f"the pool of {tid} never had an IDE ready")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--pool", type=int, default=0)
    ap.add_argument("--templates", default="vscode-python,vscode-node,jupyter-python")
    a = ap.parse_args()

    binary = find_bin()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "qingting-loadgen"], cwd=ROOT, check=True)
    loadgen = f"{TARGET}/release/qingting-loadgen"
    data = tempfile.mkdtemp(prefix="qingting-bench-")
    port = free_port()
    editors = os.environ.get("QINGTING_EDITORS_DIR", os.path.expanduser("~/.cache/qingting/editors"))
    server = start_server(binary, data, port, editors, [])
    try:
        c = Client(port)
        c.api("/api/register", {"username": "bench", "password": "correct horse battery"})
        _, page = c.api("/api/workspaces/list")
        health = {"vscode-python": "/healthz", "vscode-node": "/healthz", "jupyter-python": "/api/status"}
        ready = {t["id"] for t in page["templates"] if t["ready"]}
        wanted = [t for t in a.templates.split(",") if t in ready]
        print(f"binary: {binary}\nmachine: {os.cpu_count()} cores; runs per template: {a.runs}\n")
        print("create -> first 200 through the gateway (seconds)")
        print(f"{'template':<16} {'start':<8} {'p50':>7} {'p95':>7} {'min':>7} {'max':>7}")
        for t in a.templates.split(","):
            if t not in ready:
                print(f"{t:<16} skipped: editor not installed")
        modes = ["cold"] + (["pool"] if a.pool > 0 else [])
        for mode in modes:
            if mode == "pool":
                stop_server(server)
                server = start_server(binary, data, port, editors, [f"{t}={a.pool}" for t in wanted])
            for tid in wanted:
                times = []
                for i in range(a.runs):
                    name = f"{tid.split('-')[0][:2]}{mode[0]}{i}"
                    host = f"bench-{name}.localhost"
                    if mode == "pool":
                        wait_pooled(c, tid)
                    t0 = time.monotonic()
                    s, row = c.api("/api/workspaces/create", {"name": name, "template": tid})
                    assert s == 200, (s, row)
                    # The workspace cookie (the token exchange works while it is still starting).
                    s, h, _ = c.request("GET", "localhost", f"/open/bench/{name}")
                    loc = urllib.parse.urlparse(h["location"])
                    c.request("GET", host, f"{loc.path}?{loc.query}", headers={"Referer": f"http://localhost:{port}/"})
                    while True:
                        s, _, _ = c.request("GET", host, health[tid])
                        if s == 200:
                            break
                        time.sleep(0.002 if mode == "pool" else 0.02)
                    times.append(time.monotonic() - t0)
                    c.api("/api/workspaces/action", {"id": row["id"], "action": "delete"})
                    time.sleep(0.3)
                print(f"{tid:<16} {mode:<8} {statistics.median(times):7.3f} {pct(times, 0.95):7.3f} "
                      f"{min(times):7.3f} {max(times):7.3f}")

        # Gateway vs direct, on one running workspace of the first ready template.
        tid = wanted[0]
        s, row = c.api("/api/workspaces/create", {"name": "load", "template": tid})
        host = "bench-load.localhost"
        s, h, _ = c.request("GET", "localhost", "/open/bench/load")
        loc = urllib.parse.urlparse(h["location"])
        c.request("GET", host, f"{loc.path}?{loc.query}", headers={"Referer": f"http://localhost:{port}/"})
        while c.request("GET", host, health[tid])[0] != 200:
            time.sleep(0.05)
        cookie = "; ".join(f"{k}={v}" for k, v in c.jar[host].items())
        sock = f"{data}/run/{row['id']}/ide.sock"
        common = ["--path", health[tid], "--connections", str(a.connections), "--seconds", str(a.seconds)]
        direct = json.loads(subprocess.run([loadgen, "--unix", sock, "--host", "localhost", *common], capture_output=True, text=True, check=True).stdout)
        gateway = json.loads(subprocess.run([loadgen, "--tcp", f"127.0.0.1:{port}", "--host", f"{host}:{port}", "--header", f"Cookie: {cookie}", *common], capture_output=True, text=True, check=True).stdout)
        print(f"\nGET {health[tid]} on {tid}, {a.connections} keep-alive connections, {a.seconds} s each")
        print(f"{'path':<26} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for label, r in [("direct (Unix socket)", direct), ("through the gateway", gateway)]:
            print(f"{label:<26} {r['rps']:>8} {r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['errors']:>7}")
        c.api("/api/workspaces/action", {"id": row["id"], "action": "delete"})
        time.sleep(1)
        if a.pool > 0:
            # Pooled IDEs outlive the server like any workspace's: a server without a pool
            # removes them.
            stop_server(server)
            server = start_server(binary, data, port, editors, [])
            deadline = time.monotonic() + 60
            while any(f.endswith(".pid") for f in os.listdir(f"{data}/run")) and time.monotonic() < deadline:
                time.sleep(0.2)
    finally:
        stop_server(server)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
