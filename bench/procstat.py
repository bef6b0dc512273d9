"""What the benchmarks read about a process from /proc: its CPU time, its memory and that of
its descendants."""

import os

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of `pid` itself (children excluded), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def memory_mb(pid):
    """VmRSS and its parts (RssAnon: heap and stacks; RssFile: the mapped binary and
    libraries; RssShmem) of `pid`, in MB, read at one moment."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(value.split()[0]) / 1024
    return out


def parents():
    """Every process's children, by parent pid."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except OSError:
                pass
    return children


def tree_rss_mb(pid):
    """RSS of `pid` and every descendant, in MB."""
    children = parents()
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        stack.extend(children.get(p, []))
        try:
            total += memory_mb(p)["VmRSS"]
        except (OSError, KeyError):
            pass
    return total


def child_count(pid):
    """How many processes `pid` has as direct children."""
    return len(parents().get(pid, []))


def file_rss_mb(pid):
    """File-backed RSS of `pid` by mapped file, largest first, in MB (from /proc/PID/smaps)."""
    by_file, current = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and len(head) >= 5:
                current = head[5] if len(head) > 5 and head[5].startswith("/") else None
            elif head[0] == "Rss:" and current:
                by_file[current] = by_file.get(current, 0.0) + int(head[1]) / 1024
    return sorted(by_file.items(), key=lambda kv: -kv[1])
