#!/usr/bin/env python3
"""Live HTTP benchmark: a whole `pipeline run` of the shipped report pipeline (GitHub only, as an
organization with a live token runs it) against the fixture API server adding 50 ms to every
answer, through the live libcurl transport, with the collect stage's concurrency at 1 and at 32 in
the same run. Each run starts from a fresh data directory (no ETag cache), so both make the same
requests. Prints each run's wall time, collect stage time, requests, the server's most requests in
flight, and CPU time (user + system, the child's rusage) per request; the goal: concurrency 32 at
least 20 times faster than concurrency 1.

Usage: scripts/bench-live.py PIPELINE_BINARY [--rounds N] [--repos N] [--delay-ms N]
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "ghp_BenchToken0123456789abcdefABCDEFGHIJ"


def requests_for(repos):
    # the organization, four organization-wide listings, the repository pages, three per repository
    return 1 + 4 + max(1, -(-repos // 100)) + 3 * repos


def start_server(work, repos, delay_ms):
    world = {"github": {"tokens": [TOKEN], "delay_ms": delay_ms, "orgs": {"bench-live": {
        "name": "Bench Live", "two_factor": True, "owners": ["a", "b"], "per_page_max": 100,
        "repos": [{"name": f"repo-{n:04d}", "protection": {"reviews": 1}, "rules": ["non_fast_forward"]} for n in range(repos)],
    }}}}
    path = os.path.join(work, "world.json")
    with open(path, "w") as f:
        json.dump(world, f)
    server = subprocess.Popen([sys.executable, os.path.join(ROOT, "Tests/Peers/api_server.py"), "--world", path],
                              stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    match = re.match(r"listening on (\d+)", line)
    if not match:
        server.kill()
        sys.exit(f"bench: the fixture API server did not start: {line!r}")
    return server, f"http://127.0.0.1:{match.group(1)}"


def stats(url):
    with urllib.request.urlopen(url + "/_stats") as answer:
        return json.load(answer)


def definition(work, concurrency):
    """The shipped report pipeline, reading GitHub alone, with the collect stage's concurrency set."""
    with open(os.path.join(ROOT, "pipelines/report.yml")) as f:
        text = f.read()
    text = re.sub(r"^name: report$", f"name: report-c{concurrency}", text, flags=re.M)
    text = re.sub(r"^(\s+)sources: \[.*\]$", r"\1sources: [github]", text, count=1, flags=re.M)
    text = re.sub(r"^(\s+)concurrency: \d+$", rf"\g<1>concurrency: {concurrency}", text, count=1, flags=re.M)
    path = os.path.join(work, f"report-c{concurrency}.yml")
    with open(path, "w") as f:
        f.write(text)
    return path


def run(binary, work, url, pipeline):
    data = tempfile.mkdtemp(prefix="bench-live-", dir=work)
    env = dict(os.environ, BENCH_TOKEN=TOKEN)
    try:
        for args in (["orgs", "add", "bench-live", "--name", "Bench Live"],
                     ["integrations", "add", "--org", "bench-live", "--kind", "github", "--account", "bench-live",
                      "--token-env", "BENCH_TOKEN", "--api-url", url]):
            subprocess.run([binary] + args + ["--data-dir", data], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, check=True)
        before = stats(url)
        out = os.path.join(data, "out.json")
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os.chdir(ROOT)
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 1)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.execv(binary, [binary, "run", pipeline, "--org", "bench-live", "--data-dir", data, "--quiet", "--json"])
        _, status, usage = os.wait4(pid, 0)
        wall = time.monotonic() - start
        if status != 0:
            sys.exit(f"bench: the live run with {pipeline} failed (status {status})")
        after = stats(url)
        with open(out) as f:
            document = json.load(f)["runs"][0]
        requests = after["charged"] - before["charged"]
        return {"wall": wall, "collect": document["timings_ms"]["collect"] / 1000, "requests": requests,
                "cpu_per_request_ms": (usage.ru_utime + usage.ru_stime) * 1000 / max(1, requests),
                "evidence": document["evidence_collected"], "not_collected": document["not_collected"]}
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repos", type=int, default=131)
    parser.add_argument("--delay-ms", type=int, default=50)
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "lightsail-bench"))
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    server, url = start_server(args.work, args.repos, args.delay_ms)
    try:
        results = {}
        for concurrency in (1, 32):
            pipeline = definition(args.work, concurrency)
            rounds = [run(args.binary, args.work, url, pipeline) for _ in range(args.rounds)]
            for r in rounds:
                if r["requests"] != requests_for(args.repos) or r["not_collected"]:
                    sys.exit(f"bench: expected {requests_for(args.repos)} requests and nothing missing, got {r}")
            results[concurrency] = {k: statistics.median(r[k] for r in rounds)
                                    for k in ("wall", "collect", "requests", "cpu_per_request_ms")}
            peak = stats(url)["max_in_flight"]
            r = results[concurrency]
            print(f"live http, concurrency {concurrency}: {r['requests']:.0f} requests ({args.delay_ms} ms each at the server); "
                  f"wall {r['wall']:.2f}s, collect {r['collect']:.2f}s (medians of {args.rounds}); "
                  f"CPU {r['cpu_per_request_ms']:.2f} ms per request; server peak in flight {peak}")
        one, many = results[1], results[32]
        print(f"live http: concurrency 32 collects {one['collect'] / many['collect']:.1f}x faster than concurrency 1 "
              f"(goal >= 20), whole run {one['wall'] / many['wall']:.1f}x; CPU per request "
              f"{many['cpu_per_request_ms'] / one['cpu_per_request_ms']:.2f}x that of concurrency 1")
    finally:
        server.kill()


if __name__ == "__main__":
    main()
