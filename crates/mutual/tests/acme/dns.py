"""A tiny DNS server for the ACME tests (Pebble's -dnsserver precedent): answers A queries
from a JSON file {"name.": "127.0.0.1", ...} and TXT queries from {"txt": {"name.": ["v"]}},
re-read on every query; NXDOMAIN for the rest. UDP on 127.0.0.1:PORT; prints "ready"."""
import json
import socket
import struct
import sys

port, table_path = int(sys.argv[1]), sys.argv[2]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", port))
print("ready", flush=True)


def qname(data, off):
    labels = []
    while data[off]:
        n = data[off]
        labels.append(data[off + 1 : off + 1 + n].decode("ascii", "replace"))
        off += 1 + n
    return ".".join(labels).lower() + ".", off + 1


while True:
    data, peer = sock.recvfrom(2048)
    try:
        (qid, _flags, qd, _an, _ns, _ar) = struct.unpack("!6H", data[:12])
        name, end = qname(data, 12)
        qtype, _qclass = struct.unpack("!2H", data[end : end + 4])
        question = data[12 : end + 4]
        try:
            with open(table_path) as f:
                table = json.load(f)
        except (OSError, ValueError):
            table = {}
        answers = []
        if qtype == 1 and name in table:
            rdata = socket.inet_aton(table[name])
            answers.append(struct.pack("!HHHIH", 0xC00C, 1, 1, 5, 4) + rdata)
        elif qtype == 16:
            for value in table.get("txt", {}).get(name, []):
                raw = value.encode()
                answers.append(
                    struct.pack("!HHHIH", 0xC00C, 16, 1, 5, len(raw) + 1) + bytes([len(raw)]) + raw
                )
        known = name in table or name in table.get("txt", {})
        rcode = 0 if known else 3
        header = struct.pack("!6H", qid, 0x8400 | rcode, 1, len(answers), 0, 0)
        sock.sendto(header + question + b"".join(answers), peer)
    except Exception as e:  # a malformed query is dropped; the fixture keeps serving
        print("dns fixture:", e, file=sys.stderr, flush=True)
