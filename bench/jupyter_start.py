#!/usr/bin/env python3
"""How JupyterLab's own start-up time depends on how it is launched (outside the platform).

Starts JupyterLab on a Unix socket N times per variant and times the first 200 from
/api/status, polling every 5 ms: the `jupyter lab` launcher (the command before 2026-11-30), the
`jupyter-lab` entry point directly, and directly without the server extensions the template
turns off. The platform adds its own share on top (bench/workspaces.py measures both).

usage: bench/jupyter_start.py [N]   (default 5; editors from QINGTING_EDITORS_DIR or
~/.cache/qingting/editors)
"""
import http.client, os, shutil, socket, statistics, subprocess, sys, tempfile, time

EDITORS = os.environ.get("QINGTING_EDITORS_DIR", os.path.expanduser("~/.cache/qingting/editors"))
J = f"{EDITORS}/jupyter/bin"
OFF = ["--ServerApp.jpserver_extensions=jupyter_lsp=False", "--ServerApp.jpserver_extensions=notebook_shim=False"]
VARIANTS = {
    "jupyter lab (launcher)": ([f"{J}/jupyter", "lab"], []),
    "jupyter-lab (direct)": ([f"{J}/jupyter-lab"], []),
    "direct, lsp and shim off": ([f"{J}/jupyter-lab"], OFF),
}


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.unix_path)


def once(cmd, extra):
    d = tempfile.mkdtemp()
    sock, files = f"{d}/ide.sock", f"{d}/files"
    os.makedirs(files)
    env = dict(os.environ, HOME=d, JUPYTER_RUNTIME_DIR=f"{d}/runtime")
    args = cmd + ["--no-browser", f"--ServerApp.root_dir={files}", "--IdentityProvider.token=",
                  "--ServerApp.password=", f"--ServerApp.sock={sock}", "--ServerApp.sock_mode=0600",
                  "--allow-root"] + extra
    t0 = time.monotonic()
    p = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if p.poll() is not None:
                sys.exit(f"{' '.join(cmd)} exited with {p.returncode}")
            try:
                c = UnixHTTP(sock)
                c.request("GET", "/api/status")
                r = c.getresponse()
                r.read()
                if r.status == 200:
                    return time.monotonic() - t0
            except OSError:
                pass
            time.sleep(0.005)
    finally:
        p.terminate()
        p.wait()
        shutil.rmtree(d, ignore_errors=True)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"{'launch':<28} {'p50':>6} {'min':>6} {'max':>6}   (seconds to the first 200, {n} runs)")
    for name, (cmd, extra) in VARIANTS.items():
        ts = [once(cmd, extra) for _ in range(n)]
        print(f"{name:<28} {statistics.median(ts):6.2f} {min(ts):6.2f} {max(ts):6.2f}")


if __name__ == "__main__":
    main()
