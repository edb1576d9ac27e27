#!/usr/bin/env python3
"""The job queue at scale, on PostgreSQL (run under scripts/with-services), with the release build:

  - 1,000 organizations, each a GitHub organization of two repositories on the fixture API server
    (Tests/Peers/api_server.py) adding 20 ms to every answer, reached live through libcurl with a
    token: one job each of the shipped nightly (`pipeline enqueue nightly --all-orgs`: its
    sources, checks, scores and signed bundle; GitHub the one source these organizations
    connect), taken by 1, 2 and 4 `pipeline worker` processes (concurrency 4 each) in the same run:
    wall time from the workers' start to the last one's exit, each against one worker's;
  - peak memory of one worker over 1,000 organizations against the same over 100 (goal: at most
    1.1 times);
  - the job table's throughput: 1,000 jobs of an empty pipeline (its one source not connected, so
    a run is a few rows) taken and finished by 4 workers, in jobs per second.
  - one machine without a queue: `pipeline run nightly --all-orgs` on the embedded default over
    1,000 organizations replaying acme's recordings (GitHub, AWS and Google Workspace), its peak memory against the same over 100
    (goal: at most 1.1 times).

Every measurement starts from the same database (a template copied for each) and a fresh data
directory, so no run finds another's evidence or cached answers.

Usage: scripts/with-services python3 scripts/bench-workers.py PIPELINE_BINARY [--orgs N] [--delay-ms N]
"""
import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "ghp_BenchToken0123456789abcdefABCDEFGHIJ"
# The path a user runs: the shipped nightly definition.
PIPELINE = "nightly"
EMPTY = """name: empty
description: A source no organization has connected, so a run does next to nothing.
stages:
  - type: collect
    sources: [google_workspace]
  - type: store
"""


def cpu_times():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def url_with_database(url, database):
    parts = urllib.parse.urlparse(url)
    return parts._replace(path="/" + database).geturl()


def psql(url, sql):
    subprocess.run(["psql", url, "-Xqc", sql], check=True, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, PGOPTIONS="-c client_min_messages=warning"))


def start_server(work, count, delay_ms):
    orgs = {f"w-{n:04d}": {"name": f"W {n}", "two_factor": True, "owners": ["a", "b"], "per_page_max": 100,
                           "repos": [{"name": f"repo-{r}", "protection": {"reviews": 1}, "rules": ["non_fast_forward"]}
                                     for r in range(2)]} for n in range(count)}
    path = os.path.join(work, "world-workers.json")
    with open(path, "w") as f:
        json.dump({"github": {"tokens": [TOKEN], "delay_ms": delay_ms, "orgs": orgs}}, f)
    server = subprocess.Popen([sys.executable, os.path.join(ROOT, "Tests/Peers/api_server.py"), "--world", path],
                              stdout=subprocess.PIPE, text=True)
    match = re.match(r"listening on (\d+)", server.stdout.readline())
    if not match:
        server.kill()
        sys.exit("bench: the fixture API server did not start")
    return server, f"http://127.0.0.1:{match.group(1)}"


class Bench:
    def __init__(self, binary, work):
        self.binary = binary
        self.work = work
        self.admin = os.environ["LIGHTSAIL_TEST_PG_ADMIN_URL"]
        self.owner = os.environ["LIGHTSAIL_TEST_PG_OWNER_URL"]
        self.app = os.environ["LIGHTSAIL_TEST_PG_APP_URL"]
        self.pipelines = os.path.join(work, "pipelines-workers")
        shutil.rmtree(self.pipelines, ignore_errors=True)
        os.makedirs(self.pipelines)
        for part in ("checks", "frameworks"):
            shutil.copytree(os.path.join(ROOT, "pipelines", part), os.path.join(self.pipelines, part))
        shutil.copy(os.path.join(ROOT, "pipelines", "nightly.yml"), self.pipelines)
        for name, text in (("empty", EMPTY),):
            with open(os.path.join(self.pipelines, f"{name}.yml"), "w") as f:
                f.write(text)

    def env(self, data):
        return dict(os.environ, LIGHTSAIL_DATA_DIR=data, LIGHTSAIL_PIPELINES=self.pipelines, BENCH_TOKEN=TOKEN,
                    LIGHTSAIL_ENCRYPTION_KEY=self.key)

    def cli(self, args, database, data, check=True):
        return subprocess.run([self.binary] + args + ["--database", url_with_database(self.app, database)], cwd=ROOT,
                              env=self.env(data), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=check)

    def template(self, name, count, apis):
        """A database with `count` organizations, each with a live GitHub integration."""
        psql(self.admin, f"DROP DATABASE IF EXISTS {name}")
        psql(self.admin, f"CREATE DATABASE {name} OWNER lightsail_owner")
        subprocess.run([self.binary, "db", "migrate", "--database", url_with_database(self.owner, name)], check=True,
                       stdout=subprocess.DEVNULL)
        data = tempfile.mkdtemp(prefix="bench-setup-", dir=self.work)

        def add(n):
            org = f"w-{n:04d}"
            self.cli(["orgs", "add", org, "--name", f"W {n}"], name, data)
            self.cli(["integrations", "add", "--org", org, "--kind", "github", "--account", org, "--token-env", "BENCH_TOKEN",
                      "--api-url", apis[n % len(apis)]], name, data)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(add, range(count)))
        shutil.rmtree(data, ignore_errors=True)

    def measure(self, template, pipeline, workers, concurrency=4):
        """Copies the template, queues one job per organization, runs `workers` worker processes
        until the queue is empty: (wall seconds, peak MiB of each worker, jobs succeeded)."""
        database = f"{template}_run"
        psql(self.admin, f"DROP DATABASE IF EXISTS {database}")
        psql(self.admin, f"CREATE DATABASE {database} TEMPLATE {template} OWNER lightsail_owner")
        data = tempfile.mkdtemp(prefix="bench-workers-", dir=self.work)
        self.cli(["enqueue", pipeline, "--all-orgs"], database, data)
        busy_before, total_before = cpu_times()
        start = time.monotonic()
        pids = []
        for _ in range(workers):
            pid = os.fork()
            if pid == 0:
                os.chdir(ROOT)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
                os.execve(self.binary, [self.binary, "worker", "--concurrency", str(concurrency), "--exit-when-idle",
                                        "--poll", "200ms", "--database", url_with_database(self.app, database)], self.env(data))
            pids.append(pid)
        peaks = []
        self.worker_cpu = 0.0
        for pid in pids:
            _, status, usage = os.wait4(pid, 0)
            if status != 0:
                sys.exit(f"bench: a worker failed (status {status})")
            peaks.append(usage.ru_maxrss / 1024)
            self.worker_cpu += usage.ru_utime + usage.ru_stime
        wall = time.monotonic() - start
        busy_after, total_after = cpu_times()
        self.busy = (busy_after - busy_before) / max(1, total_after - total_before)
        done = subprocess.run(["psql", url_with_database(self.admin, database), "-XAtqc",
                               "SELECT count(*) FILTER (WHERE state = 'succeeded'), count(*) FROM jobs"],
                              capture_output=True, text=True, check=True).stdout.strip()
        shutil.rmtree(data, ignore_errors=True)
        psql(self.admin, f"DROP DATABASE {database}")
        succeeded, total = map(int, done.split("|"))
        if succeeded != total:
            sys.exit(f"bench: {total - succeeded} of {total} jobs did not succeed")
        return wall, peaks, succeeded


def one_machine(binary, work, pipelines, counts=(100, 1000)):
    """`pipeline run nightly --all-orgs` on the embedded default over organizations replaying acme's
    recording (copies under other ids): (wall seconds, peak MiB) for each count."""
    folders = os.path.join(work, "replayed-orgs")
    if not os.path.isdir(os.path.join(folders, f"r-{max(counts):04d}")):
        shutil.rmtree(folders, ignore_errors=True)
        os.makedirs(folders)
        for n in range(1, max(counts) + 1):
            shutil.copytree(os.path.join(ROOT, "fixtures/orgs/acme"), os.path.join(folders, f"r-{n:04d}"),
                            ignore=shutil.ignore_patterns("expected"))
    results = {}
    for count in counts:
        data = tempfile.mkdtemp(prefix="bench-one-", dir=work)
        env = dict(os.environ, LIGHTSAIL_DATA_DIR=data, LIGHTSAIL_PIPELINES=pipelines)
        env.pop("LIGHTSAIL_DATABASE_URL", None)
        subprocess.run([binary, "orgs", "import"] + [os.path.join(folders, f"r-{n:04d}") for n in range(1, count + 1)],
                       cwd=ROOT, env=env, stdout=subprocess.DEVNULL, check=True)
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os.chdir(ROOT)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            os.execve(binary, [binary, "run", PIPELINE, "--all-orgs", "--quiet"], env)
        _, status, usage = os.wait4(pid, 0)
        if status != 0:
            sys.exit(f"bench: run --all-orgs over {count} organizations failed ({status})")
        results[count] = (time.monotonic() - start, usage.ru_maxrss / 1024)
        shutil.rmtree(data, ignore_errors=True)
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--delay-ms", type=int, default=20)
    parser.add_argument("--servers", type=int, default=3)
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "lightsail-bench"))
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    # Several fixture servers, the organizations spread over them: one Python process (one GIL)
    # answers about 450 requests a second, which would cap the workers, not measure them.
    servers = [start_server(args.work, args.orgs, args.delay_ms) for _ in range(args.servers)]
    apis = [api for _, api in servers]
    bench = Bench(args.binary, args.work)
    bench.key = subprocess.run(["openssl", "rand", "-base64", "32"], capture_output=True, text=True, check=True).stdout.strip()
    try:
        small = max(1, args.orgs // 10)
        setup = time.monotonic()
        bench.template("bench_workers_full", args.orgs, apis)
        bench.template("bench_workers_tenth", small, apis)
        print(f"workers: {args.orgs} organizations set up in {time.monotonic() - setup:.0f}s "
              f"({args.servers} fixture API servers adding {args.delay_ms} ms to each answer)")
        walls = {}
        for workers in (1, 2, 4):
            wall, peaks, jobs = bench.measure("bench_workers_full", PIPELINE, workers)
            walls[workers] = wall
            print(f"workers: {workers} worker{'s' if workers > 1 else ''} x concurrency 4: {jobs} jobs in {wall:.1f}s "
                  f"({jobs / wall:.0f} jobs/s); {walls[1] / wall:.2f}x one worker's speed; the machine's CPUs "
                  f"{bench.busy:.0%} busy, {bench.worker_cpu * 1000 / jobs:.0f} ms of the workers' CPU a job; peak memory per worker {', '.join(f'{p:.0f}' for p in peaks)} MiB")
        tenth, tenth_peaks, _ = bench.measure("bench_workers_tenth", PIPELINE, 1)
        full_peak = None
        wall, peaks, _ = bench.measure("bench_workers_full", PIPELINE, 1)
        full_peak = peaks[0]
        print(f"workers: one worker's peak memory over {args.orgs} organizations {full_peak:.0f} MiB against "
              f"{tenth_peaks[0]:.0f} MiB over {small}: {full_peak / tenth_peaks[0]:.2f}x (goal <= 1.1)")
        wall, peaks, jobs = bench.measure("bench_workers_full", "empty", 4)
        print(f"workers: the job table's throughput: {jobs} jobs of an empty pipeline by 4 workers x concurrency 4 in "
              f"{wall:.1f}s: {jobs / wall:.0f} jobs/s taken and finished")
        small_count, large_count = 100, 1000
        one = one_machine(args.binary, args.work, bench.pipelines, (small_count, large_count))
        (small_wall, small_peak), (large_wall, large_peak) = one[small_count], one[large_count]
        print(f"one machine: run {PIPELINE} --all-orgs (embedded default, replayed recordings) over {large_count} organizations "
              f"in {large_wall:.1f}s ({large_wall * 1000 / large_count:.1f} ms each), peak {large_peak:.0f} MiB against "
              f"{small_peak:.0f} MiB over {small_count}: {large_peak / small_peak:.2f}x (goal <= 1.1)")
    finally:
        for server, _ in servers:
            server.kill()


if __name__ == "__main__":
    main()
