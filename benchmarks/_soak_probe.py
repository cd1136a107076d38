"""What the gateway holds, read from /proc: memory, CPU time, file descriptors, TCP sockets.

A socket fd of the gateway is matched by inode to /proc/net/tcp{,6}, which gives its ports and
state: connections to the upstream (by state), accepted client connections, and CLOSE_WAIT
sockets (the peer closed, the gateway never did: the classic leak).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass

from _common import http_get, process_tree, tree_memory_kb, tree_pss_kb

_TCP_STATES = {"01": "ESTABLISHED", "06": "TIME_WAIT", "08": "CLOSE_WAIT", "0A": "LISTEN",
               "04": "FIN_WAIT1", "05": "FIN_WAIT2", "09": "LAST_ACK", "02": "SYN_SENT", "0B": "CLOSING"}


def _tcp_table() -> dict[int, tuple[int, int, str]]:
    """socket inode -> (local port, remote port, state) for every TCP socket on this host."""
    table: dict[int, tuple[int, int, str]] = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    inode = int(parts[9])
                    if inode:
                        table[inode] = (int(parts[1].rsplit(":", 1)[1], 16),
                                        int(parts[2].rsplit(":", 1)[1], 16),
                                        _TCP_STATES.get(parts[3], parts[3]))
        except OSError:
            continue
    return table


@dataclass
class Snapshot:
    """The gateway's processes at one moment."""

    at: float
    pids: int
    rss_kb: int
    hwm_kb: int
    pss_kb: int  # proportional: pages shared between the workers counted once, unlike the RSS sum
    cpu_s: float
    fds: int
    fd_kinds: dict[str, int]
    files: dict[str, int]  # open regular files (and devices) by path, summed over the processes
    upstream: dict[str, int]  # the gateway's sockets to the upstream, by TCP state
    clients: int  # accepted client connections open
    close_wait: int  # sockets whose peer closed and the gateway did not (any peer)

    @property
    def upstream_open(self) -> int:
        return sum(self.upstream.values())


def snapshot(root: int, upstream_port: int, gateway_port: int) -> Snapshot:
    """Memory, CPU time, file descriptors and TCP sockets of the gateway's process tree."""
    pids = process_tree(root)
    rss, hwm = tree_memory_kb(pids)
    pss = tree_pss_kb(pids)
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = 0.0
    fds = 0
    kinds: Counter[str] = Counter()
    files: Counter[str] = Counter()
    inodes: list[int] = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            fields = stat[stat.rfind(b")") + 2:].split()
            cpu += (int(fields[11]) + int(fields[12])) / ticks
            for fd in os.scandir(f"/proc/{pid}/fd"):
                fds += 1
                try:
                    target = os.readlink(fd.path)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    kinds["socket"] += 1
                    inodes.append(int(target[8:-1]))
                elif target.startswith("pipe:"):
                    kinds["pipe"] += 1
                elif target.startswith("anon_inode:"):
                    kinds[target[11:].strip("[]")] += 1
                else:
                    kinds["file"] += 1
                    files[target] += 1
        except OSError:
            continue  # a process that just exited
    table = _tcp_table()
    upstream: Counter[str] = Counter()
    clients = close_wait = 0
    for inode in inodes:
        entry = table.get(inode)
        if entry is None:
            continue
        local, remote, state = entry
        if state == "CLOSE_WAIT":
            close_wait += 1
        if remote == upstream_port:
            upstream[state] += 1
        elif local == gateway_port and state != "LISTEN":
            clients += 1
    return Snapshot(time.monotonic(), len(pids), rss, hwm, pss, cpu, fds, dict(kinds), dict(files), dict(upstream),
                    clients, close_wait)


def gateway_metrics(port: int) -> dict[tuple[str, str, str], float]:
    """(family, provider, result-or-event) -> value, from the gateway's /metrics."""
    status, body = http_get(port, "/metrics", timeout=10)
    out: dict[tuple[str, str, str], float] = {}
    if status != 200:
        return out
    for line in body.decode().splitlines():
        for family, label in (("gateway_upstream_attempts_total", "result"),
                              ("gateway_provider_health_events_total", "event")):
            if line.startswith(family + "{"):
                labels = dict(part.split("=", 1) for part in line[len(family) + 1:line.rindex("}")].split(","))
                key = (family, labels.get("provider", "").strip('"'), labels.get(label, "").strip('"'))
                out[key] = out.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


# Host-wide TCP counters that tell why connections stalled: a full accept queue (ListenOverflows,
# ListenDrops) makes clients retransmit their SYN or handshake ACK for seconds.
TCP_COUNTERS = ("ListenOverflows", "ListenDrops", "TCPReqQFullDrop", "TCPSynRetrans", "TCPTimeouts")


def tcp_counters() -> dict[str, int]:
    """The TCP_COUNTERS of this host (the network namespace) from /proc/net/netstat."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            return {name: int(table.get(name, 0)) for name in TCP_COUNTERS}
    return {}
