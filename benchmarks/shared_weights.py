"""One copy of the weights: memory of two processes holding the same model, mapped vs copied (run by hand).

    python benchmarks/shared_weights.py [--model embedded:qwen2.5-coder-0.5b-instruct]

Starts two processes that each load the model the way the server and the learner do
(``load_runtime``), answer one prompt, and wait; then reads each one's RSS, USS (pages only it
maps) and PSS (shared pages split between the processes that map them) from /proc. Once with
``share_weights`` on (the checkpoint mapped copy-on-write) and once off (each holds its copy).
The sum of the two PSS is what the pair really costs the machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learner.config import EMBEDDED_MODEL_ID

CHILD = """
import json, sys, time
from learner.config import Settings
from learner.model.runtime import load_runtime
settings = Settings.from_mapping(json.loads(sys.argv[1]))
runtime = load_runtime(settings)
runtime.generate([{"role": "user", "content": "Write hello world in Rust."}], max_new_tokens=16)
print("ready", flush=True)
time.sleep(600)
"""


def measure(model: str, share: bool) -> dict[str, float]:
    settings = json.dumps({"model": model, "share_weights": share})
    root = str(Path(__file__).resolve().parents[1])
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, settings], stdout=subprocess.PIPE, cwd=root, text=True)
        for _ in range(2)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise SystemExit("a child failed to load the model")
        time.sleep(1.0)
        infos = [psutil.Process(c.pid).memory_full_info() for c in children]
    finally:
        for child in children:
            child.kill()
            child.wait()
    mib = 2**20
    return {
        "rss_each_mib": [round(i.rss / mib) for i in infos],
        "uss_each_mib": [round(i.uss / mib) for i in infos],
        "pss_sum_mib": round(sum(i.pss for i in infos) / mib),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=EMBEDDED_MODEL_ID)
    args = parser.parse_args()
    for share in (False, True):
        figures = measure(args.model, share)
        label = "mapped (share_weights on) " if share else "copied (share_weights off)"
        print(
            f"{label}: RSS {figures['rss_each_mib']} MiB, USS {figures['uss_each_mib']} MiB, "
            f"PSS of the pair {figures['pss_sum_mib']} MiB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
