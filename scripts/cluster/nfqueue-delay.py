#!/usr/bin/env python3
# Delays the packets of one network namespace without sch_netem: iptables sends them to an
# NFQUEUE (`-j NFQUEUE --queue-num N --queue-bypass`), this process holds each one for the delay
# and then accepts it. Only the standard library: a raw netlink socket (NETLINK_NETFILTER) speaks
# nfnetlink_queue itself. Packets are released in order, many per message (a batch verdict
# accepts every packet up to an id), from a queue ordered by due time: a timer, not a sleep per
# packet. Run by scripts/cluster/net.ts in the namespace (`ip netns exec NS python3 THIS QUEUE MS`).
#
# stdin, one command a line:  `delay MS` changes the delay (later packets);  `stats` prints one JSON
# line: packets, bytes, lateness (how much later than due packets left: this process's own cost).
import collections
import ctypes
import json
import os
import select
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5
SO_RCVBUFFORCE = 33
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_CONFIG = 2
NFQNL_MSG_VERDICT_BATCH = 3
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_PAYLOAD = 10
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_CFG_MASK = 4
NFQA_CFG_FLAGS = 5
NFQA_CFG_F_FAIL_OPEN = 1
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NF_ACCEPT = 1

# Timer slack 1 ns (default 50 µs): select's wake-ups come when due, not up to 50 µs later.
try:
    ctypes.CDLL(None).prctl(29, 1, 0, 0, 0)  # PR_SET_TIMERSLACK
except (OSError, AttributeError):
    pass

queue = int(sys.argv[1])
delay = float(sys.argv[2]) / 1000.0
sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
sock.bind((0, 0))
seq = 0


def attr(kind, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, kind) + payload + b"\0" * (-n % 4)


def message(kind, flags, attrs):
    global seq
    seq += 1
    body = struct.pack("=BB", socket.AF_UNSPEC, 0) + struct.pack(">H", queue) + attrs
    head = struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, seq, 0)
    return head + body


def configure(attrs):
    sock.send(message(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, attrs))
    reply = sock.recv(65536)
    _, kind, _, _, _ = struct.unpack_from("=IHHII", reply)
    if kind == NLMSG_ERROR:
        (err,) = struct.unpack_from("=i", reply, 16)
        if err != 0:
            sys.stderr.write(f"nfqueue-delay: config refused: {os.strerror(-err)}\n")
            sys.exit(1)


configure(attr(NFQA_CFG_CMD, struct.pack("=BBH", NFQNL_CFG_CMD_BIND, 0, 0)))
# Only the metadata (the packet id), not the packet: nothing is copied to this process.
configure(attr(NFQA_CFG_PARAMS, struct.pack(">IB", 0, NFQNL_COPY_META)))
configure(attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack(">I", 200_000)))
# A full queue accepts packets (undelayed) rather than dropping them.
configure(
    attr(NFQA_CFG_FLAGS, struct.pack(">I", NFQA_CFG_F_FAIL_OPEN))
    + attr(NFQA_CFG_MASK, struct.pack(">I", NFQA_CFG_F_FAIL_OPEN))
)
sock.setblocking(False)
sys.stdout.write("ready\n")
sys.stdout.flush()


def accept_up_to(packet_id):
    verdict = attr(NFQA_VERDICT_HDR, struct.pack(">II", NF_ACCEPT, packet_id))
    sock.send(message(NFQNL_MSG_VERDICT_BATCH, NLM_F_REQUEST, verdict))


held = collections.deque()  # (due, id), in arrival order
stats = {"packets": 0, "latenessSumUs": 0.0, "latenessMaxUs": 0.0, "heldMax": 0}
buf = bytearray(65536)
stdin = sys.stdin.buffer
os.set_blocking(stdin.fileno(), False)
pending = b""
# select, not poll or epoll: their timeouts are whole milliseconds, select's microseconds.
fds = [sock.fileno(), stdin.fileno()]

while True:
    timeout = None
    if held:
        timeout = max(0.0, held[0][0] - time.monotonic())
    for fd in select.select(fds, [], [], timeout)[0]:
        if fd == sock.fileno():
            now = time.monotonic()
            for _ in range(512):
                try:
                    n = sock.recv_into(buf)
                except BlockingIOError:
                    break
                off = 0
                while off + 16 <= n:
                    length, kind, _, _, _ = struct.unpack_from("=IHHII", buf, off)
                    if length < 16:
                        break
                    if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                        a = off + 20
                        end = off + length
                        while a + 4 <= end:
                            alen, akind = struct.unpack_from("=HH", buf, a)
                            if alen < 4:
                                break
                            if akind & 0x7FFF == NFQA_PACKET_HDR:
                                (pid,) = struct.unpack_from(">I", buf, a + 4)
                                held.append((now + delay, pid))
                                stats["packets"] += 1
                                break
                            a += (alen + 3) & ~3
                    off += (length + 3) & ~3
            stats["heldMax"] = max(stats["heldMax"], len(held))
        else:
            try:
                chunk = os.read(stdin.fileno(), 4096)
            except BlockingIOError:
                continue
            if not chunk:
                # The parent is gone: let the packets go and stop.
                if held:
                    accept_up_to(held[-1][1])
                sys.exit(0)
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                words = line.decode().split()
                if words[:1] == ["delay"]:
                    delay = float(words[1]) / 1000.0
                elif words[:1] == ["stats"]:
                    out = dict(stats, cpuSeconds=sum(os.times()[:2]), delayMs=delay * 1000)
                    sys.stdout.write(json.dumps(out) + "\n")
                    sys.stdout.flush()
    now = time.monotonic()
    last = None
    while held and held[0][0] <= now:
        due, last = held.popleft()
        late = (now - due) * 1e6
        stats["latenessSumUs"] += late
        if late > stats["latenessMaxUs"]:
            stats["latenessMaxUs"] = late
    if last is not None:
        accept_up_to(last)
