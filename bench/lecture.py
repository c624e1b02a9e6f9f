#!/usr/bin/env python3
"""A lecture-hall start: N users sign in and create a workspace within the same few seconds.

Each user is a thread with its own cookie jar: it signs in (accounts are registered before the
clock starts), creates a workspace, takes the workspace cookie through the token exchange and
polls the IDE's health path through the gateway until the first 200. Users arrive spread evenly
over --spread seconds. Reported: errors (any non-200 on the way, or no 200 within --timeout),
p50/p95/max of create -> first 200, and the server's CPU time and peak RSS over the run.

Templates: `stand-in` (default) is the gateway bench's static upstream as a sandboxed "IDE" (it
starts in milliseconds, so this measures the platform); any shipped template (e.g.
`jupyter-python`) runs the real IDE. With --pool N the server keeps N IDEs of the template
started ahead, and the run begins once the pool is full.

usage: bench/lecture.py [--users 100] [--spread 10] [--template stand-in] [--pool 0]
Needs: a built `qingting` (release preferred); qingting-loadgen (built here); the editors for
real templates (QINGTING_EDITORS_DIR).
"""
import argparse, json, os, signal, shutil, statistics, subprocess, sys, tempfile, threading, time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workspaces import ROOT, TARGET, Client, find_bin, free_port, pct  # noqa: E402

HEALTH = {"stand-in": "/healthz", "vscode-python": "/healthz", "vscode-node": "/healthz",
          "jupyter-python": "/api/status"}


STAND_IN_COMMAND = '["{editors}/bench-upstream/qingting-loadgen", "upstream", "--unix", "{socket}"]'


def stand_in_editors(work, loadgen, template_id="stand-in", command=STAND_IN_COMMAND):
    """An editors dir whose "IDE" is qingting-loadgen's static upstream, and its template
    (`command` as TOML; placeholders as in docs/runtimes.md). Returns both paths."""
    editors = f"{work}/editors"
    os.makedirs(f"{editors}/bench-upstream")
    os.makedirs(f"{editors}/code-server")
    open(f"{editors}/code-server/.installed", "w").write("bench")
    shutil.copy(loadgen, f"{editors}/bench-upstream/qingting-loadgen")
    for d in [work, editors, f"{editors}/bench-upstream", f"{editors}/code-server"]:
        os.chmod(d, 0o755)
    with open(f"{work}/templates.toml", "w") as f:
        f.write(f'[[template]]\nid = "{template_id}"\nname = "Static upstream"\neditor = "vscode"\n'
                'language = "none"\nmemory_mb = 256\nmax_processes = 64\nhealth_path = "/healthz"\n'
                f'network = "none"\ncommand = {command}\n')
    return editors, f"{work}/templates.toml"


def proc_stats(pid):
    """(CPU seconds, RSS bytes) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / tick
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))
    return cpu, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--spread", type=float, default=10.0)
    ap.add_argument("--template", default="stand-in")
    ap.add_argument("--pool", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=120.0)
    a = ap.parse_args()

    binary = find_bin()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "qingting-loadgen"], cwd=ROOT, check=True)
    loadgen = f"{TARGET}/release/qingting-loadgen"
    work = tempfile.mkdtemp(prefix="qingting-lecture-")
    data, port = f"{work}/data", free_port()
    env = dict(os.environ, QINGTING_DATA_DIR=data, QINGTING_LISTEN=f"127.0.0.1:{port}",
               QINGTING_PUBLIC_URL=f"http://localhost:{port}", RUST_LOG="warn")
    if a.template == "stand-in":
        editors, templates = stand_in_editors(work, loadgen)
        env.update(QINGTING_EDITORS_DIR=editors, QINGTING_TEMPLATES_FILE=templates)
    else:
        env["QINGTING_EDITORS_DIR"] = os.environ.get("QINGTING_EDITORS_DIR",
                                                     os.path.expanduser("~/.cache/qingting/editors"))
    with open(f"{work}/config.toml", "w") as f:
        # A class behind one address (a school's NAT): the per-address limits must admit it.
        f.write(f"[rate_limits.login_per_ip]\nmax = {a.users * 4}\nper_seconds = 60\n"
                f"[rate_limits.register_per_ip]\nmax = {a.users * 4}\nper_seconds = 60\n"
                f"[workspaces]\nmax_running = {a.users + a.pool + 10}\nidle_stop_secs = 0\n"
                f"pool = {json.dumps([f'{a.template}={a.pool}'] if a.pool else [])}\n")
    env["QINGTING_CONFIG"] = f"{work}/config.toml"
    server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(f"{work}/server.log", "w"))
    users = [f"student{i:03}" for i in range(a.users)]
    try:
        admin = Client(port)
        for _ in range(600):
            try:
                if admin.request("GET", "localhost", "/healthz")[0] == 200:
                    break
            except OSError:
                if server.poll() is not None:
                    sys.exit("the server did not start:\n" + open(f"{work}/server.log").read()[-2000:])
                time.sleep(0.05)
        for u in users:
            s, body = Client(port).api("/api/register", {"username": u, "password": "correct horse battery"})
            assert s == 200, (u, s, body)
        if a.pool:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                pool = json.loads(admin.request("GET", "localhost", "/healthz")[2])["pool"][0]
                if pool["ready"] >= a.pool:
                    break
                time.sleep(0.2)
            else:
                sys.exit("the pool never filled")

        results, errors, lock = {}, [], threading.Lock()
        health = HEALTH.get(a.template, "/healthz")

        def student(u, at):
            time.sleep(max(0.0, at - time.monotonic()))
            c = Client(port)
            try:
                s, body = c.api("/api/login", {"username": u, "password": "correct horse battery"})
                if s != 200:
                    raise RuntimeError(f"sign-in: {s} {body}")
                t0 = time.monotonic()
                s, row = c.api("/api/workspaces/create", {"name": "lab", "template": a.template})
                if s != 200:
                    raise RuntimeError(f"create: {s} {row}")
                host = f"{u}-lab.localhost"
                s, h, _ = c.request("GET", "localhost", f"/open/{u}/lab")
                loc = urllib.parse.urlparse(h["location"])
                s, _, _ = c.request("GET", host, f"{loc.path}?{loc.query}",
                                    headers={"Referer": f"http://localhost:{port}/"})
                while time.monotonic() - t0 < a.timeout:
                    s, _, _ = c.request("GET", host, health)
                    if s == 200:
                        with lock:
                            results[u] = time.monotonic() - t0
                        return
                    if s not in (502, 503):
                        raise RuntimeError(f"IDE: {s}")
                    time.sleep(0.02)
                raise RuntimeError("no 200 in time")
            except Exception as e:  # noqa: BLE001 (every failure is a result here)
                with lock:
                    errors.append(f"{u}: {e}")

        cpu0, _ = proc_stats(server.pid)
        peak = [0]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], proc_stats(server.pid)[1])
                time.sleep(0.1)

        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.monotonic() + 0.5
        threads = [threading.Thread(target=student, args=(u, start + a.spread * i / a.users))
                   for i, u in enumerate(users)]
        wall0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - wall0
        done.set()
        sampler.join()
        cpu1, _ = proc_stats(server.pid)

        times = sorted(results.values())
        print(f"binary: {binary}\nmachine: {os.cpu_count()} cores; {a.users} users over {a.spread:.0f} s; "
              f"template {a.template}; pool {a.pool}\n")
        print(f"{'errors':>7} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'server CPU s':>13} {'peak RSS MiB':>13}")
        if times:
            print(f"{len(errors):>7} {statistics.median(times):7.3f} {pct(times, 0.95):7.3f} {max(times):7.3f} "
                  f"{cpu1 - cpu0:13.1f} {peak[0] / 2**20:13.0f}")
        else:
            print(f"{len(errors):>7}       -       -       - {cpu1 - cpu0:13.1f} {peak[0] / 2**20:13.0f}")
        print(f"(wall time {wall:.1f} s)")
        for e in errors[:10]:
            print("  error:", e)
    finally:
        # IDEs outlive their server: stop them through a server without a pool, by deleting.
        for u in users:
            try:
                c = Client(port)
                if c.api("/api/login", {"username": u, "password": "correct horse battery"})[0] == 200:
                    for w in c.api("/api/workspaces/list")[1]["workspaces"]:
                        c.api("/api/workspaces/action", {"id": w["id"], "action": "delete"})
            except Exception:  # noqa: BLE001
                pass
        # Deletes finish in the background: wait for the IDEs to be gone.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and os.path.isdir(f"{data}/run") and \
                len([f for f in os.listdir(f"{data}/run") if f.endswith(".pid")]) > a.pool:
            time.sleep(0.2)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        if a.pool:
            cfg = open(f"{work}/config.toml").read().replace(f'"{a.template}={a.pool}"', "")
            open(f"{work}/config.toml", "w").write(cfg)
            server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                                      stderr=open(f"{work}/server.log", "a"))
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                run = f"{data}/run"
                if os.path.isdir(run) and not any(f.endswith(".pid") for f in os.listdir(run)):
                    break
                time.sleep(0.2)
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
