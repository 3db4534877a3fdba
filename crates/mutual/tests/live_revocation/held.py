# One caller on ONE keep-alive connection, calling every 50 ms for SECONDS; prints one JSON
# line per answer: {"t": unix time, "status", "sock": id of the socket, "close", "body"}.
# Usage: held.py PORT CERT KEY CA SECONDS
import http.client, json, ssl, sys, time

port, cert, key, ca, seconds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
conn = http.client.HTTPSConnection("localhost", int(port), context=ctx, timeout=5)
end = time.time() + seconds
while time.time() < end:
    try:
        conn.request("GET", "/held")
        sock = id(conn.sock)
        r = conn.getresponse()
        body = r.read().decode(errors="replace")
        print(json.dumps({"t": time.time(), "status": r.status, "sock": sock,
                          "close": r.will_close, "body": body[:300]}), flush=True)
        if r.will_close:
            break
    except Exception as e:  # a refused handshake on a new connection ends the run too
        print(json.dumps({"t": time.time(), "status": 0, "sock": 0, "close": True,
                          "body": str(e)[:300]}), flush=True)
        break
    time.sleep(0.05)
