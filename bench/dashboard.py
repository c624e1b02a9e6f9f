#!/usr/bin/env python3
"""The dashboard's `/workspaces` page rendered on the server, with 50 workspaces on it.

A signed-in user with 50 workspaces (rows written straight into the server's SQLite database,
stopped, so no IDE runs), and wrk with keep-alive connections on the page as a browser first
loads it (server-rendered HTML with the user, the nav and every row), at 1 and 16 connections.
`/healthz` (a database ping) on the same server is the floor: the cost of a request that does
almost nothing.

usage: bench/dashboard.py [--rounds 3] [--seconds 5] [--rows 50]
Needs: a built `qingting` (release preferred: QINGTING_BIN, else target/release) and wrk.
"""
import argparse, os, signal, sqlite3, subprocess, sys, tempfile, shutil, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workspaces import Client, find_bin, free_port  # noqa: E402
from gateway import span, wait_port, wrk  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rows", type=int, default=50)
    a = ap.parse_args()
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL)

    binary = find_bin()
    work = tempfile.mkdtemp(prefix="qingting-dashbench-")
    port = free_port()
    data = f"{work}/data"
    env = dict(os.environ, QINGTING_DATA_DIR=data, QINGTING_LISTEN=f"127.0.0.1:{port}",
               QINGTING_PUBLIC_URL=f"http://localhost:{port}", QINGTING_EDITORS_DIR=f"{work}/editors",
               QINGTING_WORKSPACES_MAX_PER_USER=str(a.rows))
    env.pop("RUST_LOG", None)
    server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(f"{work}/server.log", "w"))
    try:
        wait_port(port, path="/healthz")
        c = Client(port)
        s, me = c.api("/api/register", {"username": "bench", "password": "correct horse battery"})
        assert s == 200, (s, me)
        s, user = c.api("/api/me")
        db = sqlite3.connect(f"{data}/qingting.db", timeout=30)
        now = int(time.time())
        templates = ["vscode-python", "vscode-node", "jupyter-python"]
        db.executemany(
            "INSERT INTO workspaces (user_id, name, template_id, state, reason, runtime_state, created_at, updated_at)"
            " VALUES (?, ?, ?, 'stopped', ?, NULL, ?, ?)",
            [(user["id"], f"ws-{i:02}", templates[i % 3], "Stopped after 30 minutes without activity.", now, now)
             for i in range(a.rows)])
        db.commit()
        db.close()
        cookie = "Cookie: " + "; ".join(f"{k}={v}" for k, v in c.jar["localhost"].items())
        status, _, body = c.request("GET", "localhost", "/workspaces")
        page = body.decode()
        shown = page.count("ws-")
        assert status == 200 and f"ws-{a.rows - 1:02}" in page, (status, page[:500])

        # What Chromium sends, and no compression at all (to tell rendering from compressing).
        browser = "Accept-Encoding: gzip, deflate, br, zstd"
        paths = {
            ("/workspaces", browser): "GET /workspaces (signed in)",
            ("/workspaces", "Accept-Encoding: identity"): "  the same, uncompressed",
            ("/healthz", browser): "GET /healthz (floor)",
        }
        results = {p: {"1": [], "p50": [], "16": []} for p in paths}
        for r in range(a.rounds):
            for (path, encoding) in paths:
                url = f"http://127.0.0.1:{port}{path}"
                hdrs = [f"Host: localhost:{port}", cookie, encoding]
                rps1, p50 = wrk(url, 1, a.seconds, hdrs)
                rps16, _ = wrk(url, 16, a.seconds, hdrs)
                results[(path, encoding)]["1"].append(rps1)
                results[(path, encoding)]["p50"].append(p50)
                results[(path, encoding)]["16"].append(rps16)
            print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)

        print(f"binary: {binary}\nmachine: {os.cpu_count()} cores; {a.rounds} rounds of {a.seconds} s per cell; "
              f"ranges are min–max over rounds; the page: {len(body)} bytes of HTML, "
              f"{a.rows} workspaces ({shown} mentions)\n")
        print(f"{'request':<30} {'req/s @1':>15} {'p50 @1 (ms)':>13} {'req/s @16':>15}")
        for key, label in paths.items():
            res = results[key]
            print(f"{label:<30} {span(res['1'], lambda v: f'{v:.0f}'):>15} "
                  f"{span(res['p50'], lambda v: f'{v / 1000:.2f}'):>13} {span(res['16'], lambda v: f'{v:.0f}'):>15}")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
