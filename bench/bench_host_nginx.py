"""Through a host's nginx vs the same host's gunicorn (issue 21), on a testbed app host of
the local environment (`make demo` first): `make bench-host-nginx`.

On the host (entered with `tests/testbed/testbed exec`, so nothing needs SSH), beside the
production service and left untouched by it:
- a second gunicorn of the installed release runs as `palpite` with the host's own
  environment file and the release's `gunicorn.conf.py` (workers, access log and metrics as
  in production), bound both to a unix socket and to 127.0.0.1:8099;
- a second nginx master runs the host's own `nginx.conf` with only the upstream socket, the
  listen address (127.0.0.1:8098), the pid file and the log files changed, and the
  per-client `limit_req` lines dropped: they answer 429 above 50 POSTs/s per client, which
  is the edge policy, not capacity. Upstream keep-alive stays as in production;
- wrk (the controller's binary and its LuaJIT, copied into /run: both are Debian bookworm)
  runs on the host itself, both legs interleaved, each round: direct, then through nginx.
Everything lives under /run/palpite-bench and is removed at the end. Prints one JSON line.

`--variant NAME='SED'` (repeatable) measures a change to nginx's configuration side by
side: one more nginx master per variant, on the bench nginx's configuration edited by the
sed expression, in front of the same gunicorn; each round runs the direct leg, then the
nginx legs (in reverse order every other round), and reports each one's ratio.

Beside each leg's req/s: the CPU time (user + system, from the host's /proc) each program
spent per request during it, summed by program name: nginx, gunicorn, systemd-journal (the
app's access log). The host's production nginx and gunicorn are idle meanwhile, so what
they add is within the clock tick. Where nginx's share goes, without a profiler.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_api_runner import WRK_SCRIPT, wrk_summary  # noqa: E402

TESTBED = REPO / "tests" / "testbed" / "testbed"
WORK = "/run/palpite-bench"
DIRECT, PROXIED = "127.0.0.1:8099", "127.0.0.1:8098"
RELEASE = "/srv/palpite/app/current"

START = f"""
set -euo pipefail
install -d -o palpite -g palpite -m 0750 {WORK}/app
python3 - <<'PY'
import json, urllib.request
card = json.load(urllib.request.urlopen("http://127.0.0.1/model", timeout=10))
fields = card["input_schema"]["fields"]
instance = {{f["name"]: f["enum"][i % len(f["enum"])] for i, f in enumerate(fields)}}
open("{WORK}/body.json", "w").write(json.dumps({{"instances": [instance]}}))
PY
systemd-run --quiet --unit=palpite-bench --uid=palpite --gid=palpite -p UMask=0027 \\
  -p EnvironmentFile=/etc/palpite/palpite.env -p WorkingDirectory={RELEASE} \\
  --setenv=PALPITE_METRICS_DIR={WORK}/app/metrics SETENV \\
  {RELEASE}/.venv/bin/gunicorn --config {RELEASE}/app/gunicorn.conf.py \\
  -b unix:{WORK}/app/gunicorn.sock -b {DIRECT}
sed -e 's#unix:/run/palpite/gunicorn.sock#unix:{WORK}/app/gunicorn.sock#' \\
    -e 's#listen 80 default_server;#listen {PROXIED};#' \\
    -e 's#^pid .*#pid {WORK}/nginx.pid;#' \\
    -e 's#/var/log/nginx/access.log#{WORK}/access.log#' \\
    -e 's#/var/log/nginx/error.log#{WORK}/error.log#' \\
    -e '/^ *limit_req /d' /etc/nginx/nginx.conf > {WORK}/nginx.conf
grep -q 'listen {PROXIED};' {WORK}/nginx.conf
grep -q 'unix:{WORK}/app/gunicorn.sock' {WORK}/nginx.conf
ready='import urllib.request; urllib.request.urlopen("http://{DIRECT}/health/ready", timeout=2)'
for _ in $(seq 1 300); do python3 -c "$ready" 2>/dev/null && break; sleep 0.2; done
python3 -c "$ready" || {{ echo "the bench gunicorn did not get ready in 60 s" >&2; exit 1; }}
nginx -t -q -c {WORK}/nginx.conf
nginx -c {WORK}/nginx.conf
"""

STOP = f"""
systemctl stop palpite-bench.service 2>/dev/null || true
systemctl reset-failed palpite-bench.service 2>/dev/null || true
for pid in {WORK}/nginx.pid {WORK}/variant-*/nginx.pid; do
  [ -s "$pid" ] && kill -QUIT "$(cat "$pid")" 2>/dev/null || true
done
sleep 0.5
rm -rf {WORK}
"""


def start_variant(host: str, name: str, sed: str, address: str) -> None:
    """One more nginx master: the bench nginx's configuration, edited by `sed`."""
    home = f"{WORK}/variant-{name}"
    on_host(
        host,
        f"""set -euo pipefail
install -d -m 0755 {home}
sed -e 's#listen {PROXIED};#listen {address};#' -e 's#^pid .*#pid {home}/nginx.pid;#' \\
    -e 's#{WORK}/access.log#{home}/access.log#' {WORK}/nginx.conf > {home}/moved.conf
grep -q 'listen {address};' {home}/moved.conf
sed -e {shlex.quote(sed)} {home}/moved.conf > {home}/nginx.conf
if cmp -s {home}/moved.conf {home}/nginx.conf; then
  echo "--variant {name}: the sed expression changes nothing" >&2; exit 1
fi
nginx -t -q -c {home}/nginx.conf
nginx -c {home}/nginx.conf
""",
    )


def on_host(host: str, script: str, stdin: bytes | None = None) -> str:
    result = subprocess.run(
        [str(TESTBED), "exec", host, "bash", "-c", script],
        input=stdin,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"bench_host_nginx: on {host}: {result.stderr.decode().strip()[-400:]}")
    return result.stdout.decode()


def copy_to_host(host: str, source: Path, dest: str, mode: str = "0755") -> None:
    on_host(host, f"cat > {dest} && chmod {mode} {dest}", source.read_bytes())


def luajit() -> Path:
    """The LuaJIT library wrk was linked against, as the controller's loader finds it."""
    out = subprocess.run(["ldd", shutil.which("wrk") or "wrk"], capture_output=True, text=True)
    found = re.search(r"(libluajit\S*) => (\S+)", out.stdout)
    if not found:
        sys.exit("bench_host_nginx: wrk is not installed, or not linked against LuaJIT")
    return Path(found.group(2))


# The programs whose CPU time per request each leg reports.
PROGRAMS = ("nginx", "gunicorn", "systemd-journal")


def cpu_ticks(host: str) -> dict[str, int]:
    """Clock ticks (user + system) of every process on the host, summed by program name."""
    ticks: dict[str, int] = {}
    for line in on_host(host, "cat /proc/[0-9]*/stat 2>/dev/null || true").splitlines():
        name, _, rest = line.partition(" (")[2].rpartition(") ")
        fields = rest.split()
        if name in PROGRAMS and len(fields) > 12:
            ticks[name] = ticks.get(name, 0) + int(fields[11]) + int(fields[12])
    return ticks


def wrk(host: str, address: str, seconds: int, connections: int, threads: int) -> dict:
    before = cpu_ticks(host)
    result = _wrk(host, address, seconds, connections, threads)
    after, hz = cpu_ticks(host), 100  # USER_HZ: 100 on Linux
    result["cpu_us_per_request"] = {
        name: round((after.get(name, 0) - before.get(name, 0)) / hz / result["requests"] * 1e6, 1)
        for name in PROGRAMS
    }
    return result


def _wrk(host: str, address: str, seconds: int, connections: int, threads: int) -> dict:
    run = (
        f"cd {WORK} && LD_LIBRARY_PATH={WORK}/lib WRK_BODY={WORK}/body.json ./wrk -t{threads}"
        f" -c{connections} -d{seconds}s --timeout 10s -s {WORK}/wrk_post.lua"
        f" http://{address}/predict"
    )
    result = wrk_summary(on_host(host, run))
    result["rps"] = round(result["rps"], 1)
    return result


def _cpu(leg: dict) -> str:
    return " ".join(f"{name} {us}" for name, us in leg["cpu_us_per_request"].items() if us)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="palpite-local-app-3", help="testbed host name")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--setenv", action="append", default=[], metavar="NAME=VALUE",
        help="an environment variable for the bench gunicorn (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--variant", action="append", default=[], metavar="NAME=SED",
        help="an nginx configuration edited by a sed expression, measured beside (repeatable)",
    )  # fmt: skip
    args = parser.parse_args()
    variants: dict[str, str] = {}
    for spec in args.variant:
        name, _, sed = spec.partition("=")
        taken = {*variants, "direct", "nginx", "round", "ratio"}  # a round's own keys
        if not re.fullmatch(r"[a-z0-9-]{1,32}", name) or not sed or name in taken:
            parser.error(
                f"--variant {spec!r}: want NAME=SED, NAME of a-z 0-9 -, unique, no round key"
            )
        variants[name] = sed
    # The nginx legs: the host's configuration, then each variant on a port of its own.
    legs = {"nginx": PROXIED} | {
        name: f"127.0.0.1:{8090 + number}" for number, name in enumerate(variants)
    }

    host = args.host
    on_host(host, STOP + f"install -d -m 0755 {WORK}/lib")
    try:
        copy_to_host(host, Path(shutil.which("wrk") or "/usr/bin/wrk"), f"{WORK}/wrk")
        lib = luajit()
        copy_to_host(host, lib, f"{WORK}/lib/{lib.name}", "0644")
        copy_to_host(host, WRK_SCRIPT, f"{WORK}/wrk_post.lua", "0644")
        # --setenv: the bench gunicorn's own settings (shell-quoted), e.g. a setting's
        # effect measured beside the default in two runs.
        extra = " ".join(shlex.quote(f"--setenv={pair}") for pair in args.setenv)
        on_host(host, START.replace(" SETENV \\\n", f" {extra} \\\n"))
        for name, sed in variants.items():
            start_variant(host, name, sed, legs[name])
        for address in (DIRECT, *legs.values()):  # warm every path (workers, keep-alive)
            wrk(host, address, args.warmup, args.connections, args.threads)
        rounds = []
        for number in range(1, args.rounds + 1):
            load = Path("/proc/loadavg").read_text().split()[0]
            direct = wrk(host, DIRECT, args.duration, args.connections, args.threads)
            row: dict = {"round": number, "load_at_start": float(load), "direct": direct}
            order = list(legs) if number % 2 else list(legs)[::-1]
            for leg in order:
                row[leg] = wrk(host, legs[leg], args.duration, args.connections, args.threads)
            row["ratio"] = round(row["nginx"]["rps"] / direct["rps"], 3)
            row["variant_ratios"] = {
                name: round(row[name]["rps"] / direct["rps"], 3) for name in variants
            }
            rounds.append(row)
            print(
                f"round {number}: direct {direct['rps']:,.0f} req/s (p99"
                f" {direct['p99_us'] / 1000:.1f} ms; CPU µs per request {_cpu(direct)}),"
                f" load {load}",
                file=sys.stderr,
            )
            for leg in legs:
                print(
                    f"  {leg}: {row[leg]['rps']:,.0f} req/s (p99"
                    f" {row[leg]['p99_us'] / 1000:.1f} ms): {row[leg]['rps'] / direct['rps']:.1%};"
                    f" CPU µs per request {_cpu(row[leg])}",
                    file=sys.stderr,
                )
    finally:
        on_host(host, STOP)
    summary = {
        "host": host,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "method": {
            k: getattr(args, k)
            for k in ("rounds", "duration", "warmup", "connections", "setenv", "variant")
        },
        "rounds": rounds,
        "median_ratio": statistics.median(r["ratio"] for r in rounds),
        "variant_median_ratios": {
            name: statistics.median(r["variant_ratios"][name] for r in rounds) for name in variants
        },
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
