#!/usr/bin/env python3
"""The report and the bundle, measured on whole `pipeline run report` runs (release build, the
shipped report pipeline, the embedded default store) against baselines taken in the same run:

  - a bundle of 2,000 evidence originals totalling 500 MB: the run's render stage (the PDF and the
    zip, every original streamed from the object store and checked against its hash) against
    `zip -r -6` of the same evidence folder (the goal: at most 1.1 times its time), and the run's
    peak memory (the goal: under 150 MB);
  - reports of about 200 and 400 pages (organizations of two sizes) from the shipped report
    pipeline rendering the PDF alone (`outputs: [pdf]`, so the bundle's evidence does not weigh in):
    the render stage of the larger against the smaller (the goal: at most 2.2 times), with the
    pages counted by pdfinfo.

Usage: scripts/bench-report.py PIPELINE_BINARY [--rounds N] [--work DIR] [--only bundle|pages]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLE = ("bench-bundle", ["--repos", "2000", "--large-bodies", "2000", "--body-mb", "0.25"])
PAGES = [("bench-pages-200", ["--repos", "1400"]), ("bench-pages-400", ["--repos", "3000"])]


def generate(work, orgs):
    folder = os.path.join(work, "orgs")
    for name, args in orgs:
        if not os.path.exists(os.path.join(folder, name, "github.jsonl")):
            subprocess.run([sys.executable, os.path.join(ROOT, "fixtures/tools/make_github_recordings.py"),
                            "--synthetic", name, "--out", folder] + args, check=True, stdout=subprocess.DEVNULL)


def pdf_only_pipelines(work):
    """The shipped definitions, the report rendering only its PDF."""
    folder = os.path.join(work, "pipelines-pdf")
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(os.path.join(ROOT, "pipelines"), folder)
    path = os.path.join(folder, "report.yml")
    with open(path) as f:
        text = f.read()
    assert "outputs: [pdf, bundle]" in text
    with open(path, "w") as f:
        f.write(text.replace("outputs: [pdf, bundle]", "outputs: [pdf]"))
    return folder


def run(binary, org, work, pipelines=None):
    """One whole run in a fresh data directory: (wall, peak MiB, the run's JSON, the data directory)."""
    data = tempfile.mkdtemp(prefix="bench-data-", dir=work)
    subprocess.run([binary, "orgs", "import", os.path.join(work, "orgs", org), "--data-dir", data], cwd=ROOT,
                   stdout=subprocess.DEVNULL, check=True)
    out = os.path.join(data, "run.json")
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.chdir(ROOT)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT)
        os.dup2(fd, 1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.execv(binary, [binary, "run", "report", "--org", org, "--data-dir", data, "--quiet", "--json"]
                 + (["--pipelines", pipelines] if pipelines else []))
    _, status, usage = os.wait4(pid, 0)
    wall = time.monotonic() - start
    if status != 0:
        sys.exit(f"bench: {org} failed ({status})")
    with open(out) as f:
        document = json.load(f)["runs"][0]
    return wall, usage.ru_maxrss / 1024, document, data


def zip_baseline(data, org, work):
    """`zip -r -6` of the run's evidence folder (originals and metadata), timed."""
    target = os.path.join(work, "baseline.zip")
    if os.path.exists(target):
        os.remove(target)
    start = time.monotonic()
    subprocess.run(["zip", "-q", "-r", "-6", target, "evidence"], cwd=os.path.join(data, "objects", org), check=True)
    elapsed = time.monotonic() - start
    os.remove(target)
    return elapsed


def pages(data, document):
    pdf = next(a["location"] for a in document["artifacts"] if a["kind"] == "pdf")
    info = subprocess.run(["pdfinfo", pdf], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "lightsail-bench"))
    parser.add_argument("--only", choices=["bundle", "pages"])
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    generate(args.work, ([BUNDLE] if args.only != "pages" else []) + (PAGES if args.only != "bundle" else []))
    if args.only != "pages":
        bundle_part(args)
    if args.only != "bundle":
        pages_part(args)


def bundle_part(args):
    """The bundle against zip -r -6, alternating so both see the same machine."""
    name = BUNDLE[0]
    renders, zips, memory, walls = [], [], [], []
    for _ in range(args.rounds):
        wall, peak, document, data = run(args.binary, name, args.work)
        renders.append(document["timings_ms"]["render"] / 1000)
        walls.append(wall)
        memory.append(peak)
        zips.append(zip_baseline(data, name, args.work))
        bundle = next(a for a in document["artifacts"] if a["kind"] == "bundle")
        evidence_mb = sum(os.path.getsize(os.path.join(root, f)) for root, _, files in
                          os.walk(os.path.join(data, "objects", name, "evidence")) for f in files) / 1e6
        shutil.rmtree(data, ignore_errors=True)
    render, base = statistics.median(renders), statistics.median(zips)
    # Each round's ratio, then their median: a noisy neighbour moves both sides of a round alike.
    ratio = statistics.median(r / z for r, z in zip(renders, zips))
    print(f"bundle: {document['evidence_collected']} evidence items, {evidence_mb:.0f} MB of evidence files, a "
          f"{bundle['size'] / 1e6:.0f} MB zip; render stage {render:.2f}s against zip -r -6 {base:.2f}s "
          f"(median of the rounds' ratios {ratio:.2f}, goal <= 1.1; rounds {', '.join(f'{r / z:.2f}' for r, z in zip(renders, zips))}); "
          f"whole run {statistics.median(walls):.2f}s; peak memory {max(memory):.0f} MiB (goal < 150)")


def pages_part(args):
    """Reports of two sizes, the PDF alone, alternating within each round."""
    pipelines = pdf_only_pipelines(args.work)
    times = {org: [] for org, _ in PAGES}
    counts = {}
    for _ in range(args.rounds):
        for org, _ in PAGES:
            _, _, document, data = run(args.binary, org, args.work, pipelines)
            times[org].append(document["timings_ms"]["render"] / 1000)
            counts[org] = pages(data, document)
            shutil.rmtree(data, ignore_errors=True)
    (small_org, _), (large_org, _) = PAGES
    ratios = [b / a for a, b in zip(times[small_org], times[large_org])]
    print(f"report pages: {counts[small_org]} pages render in {statistics.median(times[small_org]):.2f}s, "
          f"{counts[large_org]} pages in {statistics.median(times[large_org]):.2f}s (median of the rounds' ratios "
          f"{statistics.median(ratios):.2f} for {counts[large_org] / counts[small_org]:.2f}x the pages, goal <= 2.2; "
          f"rounds {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
