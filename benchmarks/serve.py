"""`runtime serve` under load: closed-loop clients on 127.0.0.1, each sending one tatoeba-fra test
sentence at a time (a new one as soon as the last is answered), at 1, 8, 32 and 128 clients, for a
fixed time per level: sentences/s, p50 and p99 latency. The same folders served with dynamic
batching (the defaults) and with --max-batch 1 (every sentence its own onnxruntime run), one server
at a time; and the in-process Translator, one sentence at a time, on the same sentences (as the
CLI runs it, and as the server runs it: onnxruntime's workers not spinning).

    python benchmarks/serve.py --fp32 DIR --int8 DIR     # e.g. a 20-minute model's two folders
    python benchmarks/serve.py --quick                   # a model trained for 5 s, 1 s per level
"""
from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import threading
import time

from common import OUT, ROOT, TATOEBA, emit, machine, require_shared, run

LEVELS = [1, 8, 32, 128]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(folder: str, *args: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "runtime", "serve", "--model", folder, "--port", str(port),
                             "--device", "cpu", *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(proc.stderr.read().decode())


def load(port: int, clients: int, sentences: list[str], seconds: float) -> dict:
    """Closed loop: each client thread keeps one connection and one request in flight."""
    latencies, stop = [], time.perf_counter() + seconds
    lock = threading.Lock()

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine, i = [], k
        while time.perf_counter() < stop:
            body = json.dumps({"q": sentences[i % len(sentences)], "source": "en", "target": "fr"})
            t0 = time.perf_counter()
            conn.request("POST", "/translate", body, {"Content-Type": "application/json"})
            reply = conn.getresponse()
            reply.read()
            if reply.status != 200:
                raise RuntimeError(f"status {reply.status}")
            mine.append(time.perf_counter() - t0)
            i += clients
        with lock:
            latencies.extend(mine)

    start_time = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start_time
    latencies.sort()
    return {"sentences_per_s": round(len(latencies) / wall, 1), "p50_ms": round(1000 * statistics.median(latencies), 2),
            "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 2), "requests": len(latencies)}


def in_process_b1(folder: str, sentences: list[str], spinning: bool = True) -> float:
    """The Translator alone, one sentence at a time, on the first 1,000 sentences (about what the
    1-client level sends in 10 s): median ms per sentence. spinning=False is how the server runs it."""
    from runtime import Translator

    t = Translator(folder, device="cpu", spinning=spinning)
    t.translate(sentences[:4])
    times = []
    for s in sentences[:1000]:
        t0 = time.perf_counter()
        t.translate(s)
        times.append(time.perf_counter() - t0)
    return round(1000 * statistics.median(times), 2)


def in_process_batched(folder: str, sentences: list[str], spinning: bool, batch: int = 32) -> float:
    """The Translator alone on the first 1,024 sentences in batches of 32: sentences/s."""
    from runtime import Translator

    t = Translator(folder, device="cpu", spinning=spinning)
    t.translate(sentences[:64], batch_size=batch)
    chunk = sentences[:1024]
    t0 = time.perf_counter()
    t.translate(chunk, batch_size=batch)
    return round(len(chunk) / (time.perf_counter() - t0), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fp32", help="an fp32 model folder")
    ap.add_argument("--int8", help="an int8 model folder")
    ap.add_argument("--seconds", type=float, default=10, help="per level")
    ap.add_argument("--quick", action="store_true", help="a model trained for 5 s, levels 1 and 8, 1 s each, 128 sentences")
    args = ap.parse_args()
    require_shared()
    levels = LEVELS
    if args.quick:
        args.seconds, levels = 1, [1, 8]
        quick = OUT / "serve-quick"
        run([sys.executable, "-m", "trainer", "fit", "--data", str(TATOEBA / "train.tsv"), "--max-pairs", "3000",
             "--time-budget", "5", "--hidden-dim", "64", "--emb-dim", "32", "--vocab-size", "1000", "--out", str(quick),
             "--force"])
        for kind, extra in (("fp32", []), ("int8", ["--quantize", "int8"])):
            run([sys.executable, "-m", "export", "onnx", str(quick / "checkpoint.pth"), "--out", str(quick / kind),
                 "--force", *extra])
        args.fp32, args.int8 = str(quick / "fp32"), str(quick / "int8")
    sentences = [l.split("\t")[0] for l in (TATOEBA / "test.tsv").read_text(encoding="utf-8").splitlines()]
    if args.quick:
        sentences = sentences[:128]
    results = {}
    for kind, folder in (("fp32", args.fp32), ("int8", args.int8)):
        if not folder:
            continue
        results[kind] = {"in_process_b1_ms": in_process_b1(folder, sentences),
                         "in_process_b1_no_spinning_ms": in_process_b1(folder, sentences, spinning=False),
                         "in_process_b32_sentences_per_s": in_process_batched(folder, sentences, True),
                         "in_process_b32_no_spinning_sentences_per_s": in_process_batched(folder, sentences, False)}
        for mode, extra in (("dynamic batching", []), ("--max-batch 1", ["--max-batch", "1"])):
            proc, port = start(folder, *extra)
            try:
                rows = {}
                for clients in levels:
                    rows[clients] = load(port, clients, sentences, args.seconds)
                    print(f"{kind} {mode:17s} {clients:4d} clients: {rows[clients]}", file=sys.stderr, flush=True)
                results[kind][mode] = rows
            finally:
                proc.terminate()
                proc.wait(timeout=60)
        r = results[kind]
        top = max(levels) if not args.quick else levels[-1]
        at = 32 if 32 in levels else top
        r["batching_gain_at_%d" % at] = round(r["dynamic batching"][at]["sentences_per_s"]
                                              / r["--max-batch 1"][at]["sentences_per_s"], 2)
        r["p50_1_client_minus_in_process_ms"] = round(r["dynamic batching"][1]["p50_ms"] - r["in_process_b1_ms"], 2)
    emit({"results": results, "seconds_per_level": args.seconds, "quick": args.quick, "machine": machine(),
          "folders": {"fp32": args.fp32, "int8": args.int8}})


if __name__ == "__main__":
    main()
