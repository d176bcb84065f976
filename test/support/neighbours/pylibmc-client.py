# pylibmc (Debian's python3-pylibmc, on libmemcached 1.1.4) driven by the interop tests
# (test/integration/neighbours.test.ts). Reads a JSON array of jobs on stdin, prints a JSON array
# of results. Data arrives as JSON, never as code. Each job:
#   servers:   pylibmc server specs in order ("127.0.0.1:11211", "127.0.0.1:11212:3" with a
#              weight, "/path/to.sock")
#   binary:    the binary protocol
#   behaviors: pylibmc behaviours, set as pylibmc.Client(behaviors=...) sets them
#   ops:       {"op": "set", "items": [[key, base64 value, ttl], ...]}   bytes (flags 0)
#              {"op": "setText", "key": k, "value": s, "ttl": t}         str (UTF-8, pylibmc's flag)
#              {"op": "setInt", "key": k, "value": n, "ttl": t}          int (pylibmc's flag)
#              {"op": "get", "keys": [...]}   -> {key: {"type": type name, "b64": value}} (hits)
#              {"op": "incr", "key": k, "delta": n}  -> the new value
# Any failure raises: the process exits non-zero with a traceback, the test sees it.
import base64
import json
import sys

import pylibmc


def run_job(job):
    mc = pylibmc.Client(job["servers"], binary=job["binary"], behaviors=job["behaviors"])
    results = []
    for op in job["ops"]:
        kind = op["op"]
        if kind == "set":
            for key, b64, ttl in op["items"]:
                if not mc.set(key, base64.b64decode(b64), time=ttl):
                    raise RuntimeError("set %s failed" % key)
            results.append(True)
        elif kind in ("setText", "setInt"):
            value = op["value"] if kind == "setText" else int(op["value"])
            if not mc.set(op["key"], value, time=op["ttl"]):
                raise RuntimeError("set %s failed" % op["key"])
            results.append(True)
        elif kind == "get":
            got = mc.get_multi(op["keys"])
            out = {}
            for key, value in got.items():
                raw = value if isinstance(value, bytes) else str(value).encode("utf-8")
                out[key] = {"type": type(value).__name__, "b64": base64.b64encode(raw).decode("ascii")}
            results.append(out)
        elif kind == "incr":
            results.append(mc.incr(op["key"], op["delta"]))
        else:
            raise ValueError("unknown op %s" % kind)
    mc.disconnect_all()
    return results


json.dump([run_job(job) for job in json.load(sys.stdin)], sys.stdout)
sys.stdout.write("\n")
