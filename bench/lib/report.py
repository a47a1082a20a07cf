# SPDX-License-Identifier: Apache-2.0
"""Summaries, tables, CSV, plots and RESULTS.md from benchmark rows.

Rows are compared within a group of (scenario, image, state, what). A line
of a group is one (peer, fmt) pair, so peers that fetch different formats of
the same image (containerd gzip, imgmount zstd:chunked, stargz estargz) still
land in one table. Each line shows the minimum and median seconds over its
repetitions and the ratio of its median to the fastest line's median.
"""

import csv
import os
import platform
import shutil
import statistics
import subprocess
from pathlib import Path

from . import common

GROUP_KEYS = ("scenario", "image", "state", "what")
CSV_FIELDS = ("scenario", "image", "fmt", "peer", "state", "what", "rep",
              "seconds", "link_bytes")


# Summary

def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _summarize_extras(rows):
    """Take the median of each numeric extra over the rows, and the first
    value of any other extra, on which the rows of a line normally agree."""
    extras = {}
    for key in dict.fromkeys(k for r in rows for k in r["extra"]):
        values = [r["extra"].get(key) for r in rows]
        numbers = [v for v in values if isinstance(v, (int, float))
                   and not isinstance(v, bool)]
        extras[key] = _median(numbers) if numbers else values[0]
    return extras


def summarize(rows):
    """Return one dict per (group, peer, fmt), ordered by group and then by
    median seconds, with n, min, median, ratio, link_bytes and extras."""
    lines = {}
    for r in rows:
        key = tuple(r[k] for k in GROUP_KEYS) + (r["peer"], r["fmt"])
        lines.setdefault(key, []).append(r)

    summary = []
    for key, line_rows in lines.items():
        seconds = [r["seconds"] for r in line_rows]
        summary.append({
            **dict(zip(GROUP_KEYS, key)),
            "peer": key[-2],
            "fmt": key[-1],
            "n": len(line_rows),
            "min": min(seconds),
            "median": statistics.median(seconds),
            "link_bytes": _median([r["link_bytes"] for r in line_rows]),
            "extra": _summarize_extras(line_rows),
        })

    fastest = {}
    for s in summary:
        group = tuple(s[k] for k in GROUP_KEYS)
        fastest[group] = min(fastest.get(group, s["median"]), s["median"])
    for s in summary:
        best = fastest[tuple(s[k] for k in GROUP_KEYS)]
        s["ratio"] = s["median"] / best if best > 0 else None

    order = {}
    for s in summary:
        order.setdefault(s["scenario"], len(order))
    summary.sort(key=lambda s: (order[s["scenario"]], s["image"], s["what"],
                                s["state"], s["median"]))
    return summary


# Formatting

def format_bytes(n):
    if n is None:
        return "-"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def _format_value(key, value):
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if key.endswith("bytes"):
            return format_bytes(value)
        return f"{value:.4g}"
    if isinstance(value, int) and key.endswith("bytes"):
        return format_bytes(value)
    return str(value)


def _format_extras(extra):
    return ", ".join(f"{k}={_format_value(k, v)}" for k, v in extra.items())


def _table_cells(s):
    ratio = "-" if s["ratio"] is None else f"{s['ratio']:.2f}x"
    return [s["image"], s["state"], s["what"] or "-", s["peer"], s["fmt"] or "-",
            str(s["n"]), f"{s['min']:.3f}", f"{s['median']:.3f}", ratio,
            format_bytes(s["link_bytes"]), _format_extras(s["extra"])]


TABLE_HEADER = ["image", "state", "what", "peer", "fmt", "n", "min s",
                "median s", "ratio", "link bytes", "extra"]


def scenarios_of(summary):
    return list(dict.fromkeys(s["scenario"] for s in summary))


def format_tables(summary):
    """Format fixed-width text tables, one per scenario."""
    out = []
    for scenario in scenarios_of(summary):
        cells = [_table_cells(s) for s in summary if s["scenario"] == scenario]
        widths = [max(len(row[i]) for row in cells + [TABLE_HEADER])
                  for i in range(len(TABLE_HEADER) - 1)]
        out.append(f"== {scenario}")
        for row in [TABLE_HEADER] + cells:
            fixed = "  ".join(cell.ljust(w) for cell, w in zip(row, widths))
            out.append(f"{fixed}  {row[-1]}".rstrip())
        out.append("")
    return "\n".join(out)


def format_markdown_tables(summary):
    out = []
    for scenario in scenarios_of(summary):
        out.append(f"### {scenario}\n")
        out.append("| " + " | ".join(TABLE_HEADER) + " |")
        out.append("|" + "---|" * len(TABLE_HEADER))
        for s in summary:
            if s["scenario"] == scenario:
                cells = [c.replace("|", "\\|") for c in _table_cells(s)]
                out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


# CSV

def write_csv(rows, path):
    """Write one CSV line per row. Each extra becomes a column named
    extra_<key>."""
    extra_keys = list(dict.fromkeys(k for r in rows for k in r["extra"]))
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(list(CSV_FIELDS) + [f"extra_{k}" for k in extra_keys])
        for r in rows:
            writer.writerow([r[k] for k in CSV_FIELDS]
                            + [r["extra"].get(k, "") for k in extra_keys])


# Plots

def write_plots(summary, out_dir):
    """Draw one PNG per scenario into out_dir: median seconds per line as
    horizontal bars, the minimum as a tick, grouped by (image, state, what).
    Returns the paths written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for scenario in scenarios_of(summary):
        lines = [s for s in summary if s["scenario"] == scenario]
        labels = [f"{s['image']} {s['state']} {s['what']} | {s['peer']} ({s['fmt']})"
                  .replace("  ", " ") for s in lines]
        medians = [s["median"] for s in lines]
        minimums = [s["min"] for s in lines]

        figure, axes = plt.subplots(figsize=(10, 0.9 + 0.35 * len(lines)))
        positions = list(range(len(lines)))[::-1]
        axes.barh(positions, medians, color="#4c72b0", label="median")
        axes.plot(minimums, positions, "k|", markersize=12, label="min")
        axes.set_yticks(positions)
        axes.set_yticklabels(labels, fontsize=8)
        axes.set_xlabel("seconds (lower is better)")
        if min(medians) > 0 and max(medians) / min(medians) > 50:
            axes.set_xscale("log")
        axes.set_title(f"{scenario}: median and min over repetitions")
        axes.legend(loc="lower right", fontsize=8)
        figure.tight_layout()

        path = Path(out_dir) / f"{scenario}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        paths.append(path)
    return paths


# Targets

def _line(summary, scenario, peer, state, image=None, what=None):
    for s in summary:
        if (s["scenario"], s["peer"], s["state"]) == (scenario, peer, state) \
                and (image is None or s["image"] == image) \
                and (what is None or s["what"] == what):
            return s
    return None


def _target(goal, measured, met):
    if met is None:
        verdict = "not measured"
    elif met:
        verdict = "met"
    else:
        verdict = "not met"
    return {"target": goal, "measured": measured, "verdict": verdict}


def evaluate_targets(summary, rate_mbit):
    """State each target of the benchmark against the measured medians.
    A target whose peer or scenario did not run is "not measured"."""
    targets = []
    start_image = "python"
    imgmount_cold = _line(summary, "start", "imgmount", "cold", start_image)
    local = _line(summary, "start", "local", "warm", start_image)
    stargz_cold = _line(summary, "start", "stargz", "cold", start_image)

    if imgmount_cold:
        seconds = imgmount_cold["median"]
        targets.append(_target(
            "python start by mount + chroot, empty cache, under 0.2 s "
            "(goal stated for a 10 ms, 1 Gbit/s link)",
            f"{seconds:.3f} s", seconds < 0.2))
    else:
        targets.append(_target("python start by mount + chroot under 0.2 s",
                               "start scenario on image python did not run", None))

    targets.append(_target(
        "python start through containerd within 1.15x of a fully local image",
        "no imgmount snapshotter for containerd exists yet"
        + (f"; local chroot start is {local['median']:.3f} s" if local else ""),
        None))

    if imgmount_cold and stargz_cold:
        ratio = imgmount_cold["median"] / stargz_cold["median"]
        targets.append(_target(
            "cold python start at most half of stargz-snapshotter's time",
            f"{ratio:.2f}x of stargz ({imgmount_cold['median']:.3f} s vs "
            f"{stargz_cold['median']:.3f} s)", ratio <= 0.5))
    else:
        targets.append(_target(
            "cold python start at most half of stargz-snapshotter's time",
            "stargz peer did not run (needs --stargz-grpc PATH)", None))

    # Both sides uncompressed: the chunks fetched (bytes_from_network of
    # imgmount stats) against what the workload reads from a local tree.
    # The link bytes are compressed and would flatter the ratio.
    extra = imgmount_cold["extra"] if imgmount_cold else {}
    workload, fetched = extra.get("workload_bytes"), extra.get("fetched_bytes")
    if workload and fetched:
        ratio = fetched / workload
        targets.append(_target(
            "bytes fetched at most 1.2x the bytes the workload reads with "
            "default readahead (both uncompressed)",
            f"{ratio:.2f}x ({format_bytes(fetched)} of chunks fetched, "
            f"{format_bytes(imgmount_cold['link_bytes'])} on the link, "
            f"{format_bytes(workload)} read)", ratio <= 1.2))
    else:
        targets.append(_target("bytes fetched at most 1.2x the bytes read",
                               f"no cold imgmount start on image {start_image} "
                               "with both byte counts", None))

    targets += _metadata_targets(summary)
    targets += _seqread_targets(summary, rate_mbit)
    return targets


def _metadata_targets(summary):
    goal = "warm metadata walk within 1.5x of kernel overlayfs"
    targets = []
    for s in summary:
        if (s["scenario"], s["peer"], s["state"]) != ("metadata", "imgmount", "warm"):
            continue
        overlay = _line(summary, "metadata", "overlayfs", "warm", s["image"], s["what"])
        if overlay:
            ratio = s["median"] / overlay["median"]
            targets.append(_target(
                f"{goal} (image {s['image']})",
                f"{ratio:.2f}x ({s['median']:.3f} s vs {overlay['median']:.3f} s)",
                ratio <= 1.5))
    return targets or [_target(goal, "no warm imgmount and overlayfs metadata rows", None)]


def _seqread_targets(summary, rate_mbit):
    goal = "cold large-file read at least 80% of the link rate"
    targets = []
    for s in summary:
        if (s["scenario"], s["peer"], s["state"]) != ("seqread", "imgmount", "cold"):
            continue
        read_bytes = s["extra"].get("bytes") or s["link_bytes"]
        if not rate_mbit:
            targets.append(_target(goal, "no link rate (--link none)", None))
        elif read_bytes and s["median"] > 0:
            mbit = read_bytes * 8 / s["median"] / 1e6
            share = mbit / rate_mbit
            targets.append(_target(
                f"{goal} (image {s['image']})",
                f"{mbit:.0f} Mbit/s = {share:.0%} of {rate_mbit:g} Mbit/s",
                share >= 0.8))
    return targets or [_target(goal, "no cold imgmount seqread rows", None)]


def format_targets(targets):
    return "\n".join(f"- {t['verdict'].upper()}: {t['target']}: {t['measured']}"
                     for t in targets)


# RESULTS.md

def _read_first(path, prefix):
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _file_system_of(path):
    """Return the file system type and mount point that contain `path`."""
    target = os.path.realpath(path)
    best, fstype = "", "unknown"
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            point = fields[1]
            if (target == point or target.startswith(point.rstrip("/") + "/")) \
                    and len(point) >= len(best):
                best, fstype = point, fields[2]
    return f"{fstype} ({best})"


def machine_info(cache_dir):
    mem_kib = _read_first("/proc/meminfo", "MemTotal") or "? kB"
    return {
        "CPU": _read_first("/proc/cpuinfo", "model name") or platform.processor(),
        "cores": str(os.cpu_count()),
        "RAM": f"{int(mem_kib.split()[0]) / (1 << 20):.1f} GiB",
        "kernel": platform.release(),
        "disk file system": _file_system_of(cache_dir),
    }


def git_commit():
    result = subprocess.run(["git", "-C", str(common.REPO_DIR), "rev-parse", "HEAD"],
                            capture_output=True, text=True, timeout=30)
    commit = result.stdout.strip() or "unknown"
    status = subprocess.run(["git", "-C", str(common.REPO_DIR), "status",
                             "--porcelain", "--untracked-files=no"],
                            capture_output=True, text=True, timeout=30)
    if status.stdout.strip():
        commit += " (with uncommitted changes)"
    return commit


def _other_records(path):
    """Lines that point to the other RESULTS*.md files next to path."""
    others = sorted(p.name for p in path.parent.glob("RESULTS*.md") if p.name != path.name)
    if not others:
        return []
    return ["Other recorded runs: " + ", ".join(f"[{name}]({name})" for name in others)
            + ".", ""]


def write_results_md(path, summary, targets, plots, meta):
    """Write RESULTS.md and copy the plots to results/ next to it.

    `meta` contains "command", "date", "link" (a description) and
    "cache_dir"."""
    path = Path(path)
    # RESULTS.md owns results/; another record (--record-to) gets its own
    # subdirectory, so that recording it keeps the main run's plots.
    plots_dir = path.parent / "results"
    if path.name != "RESULTS.md":
        plots_dir = plots_dir / path.stem
    plots_dir.mkdir(parents=True, exist_ok=True)
    for old in plots_dir.glob("*.png"):
        old.unlink()
    copied = []
    for plot in plots:
        shutil.copy(plot, plots_dir / Path(plot).name)
        copied.append(str((plots_dir / Path(plot).name).relative_to(path.parent)))

    machine = machine_info(meta["cache_dir"])
    text = [
        "# Benchmark results",
        "",
        "Written by `bench/run --record`; do not edit by hand. Lower seconds "
        "are better. The ratio is a line's median divided by the fastest "
        "median among the lines with the same scenario, image, state and "
        "workload. Link bytes are the bytes that crossed the benchmark link "
        "towards this host during the measurement. In randread, seconds are "
        "the time 1,000,000 reads take at the measured IOPS (fio runs for "
        "a fixed time).",
        "",
        *_other_records(path),
        "## Run",
        "",
        f"- command: `{meta['command']}`",
        f"- date: {meta['date']}",
        f"- git commit: {git_commit()}",
        f"- link: {meta['link']}",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in machine.items()],
        "",
        "## Targets",
        "",
        format_targets(targets),
        "",
        "## Tables",
        "",
        format_markdown_tables(summary),
        "## Plots",
        "",
        *[f"![{Path(p).stem}]({p})\n" for p in copied],
    ]
    path.write_text("\n".join(text))
