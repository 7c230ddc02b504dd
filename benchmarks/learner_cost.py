"""What learning costs on this machine, with the embedded model (run by hand).

    python benchmarks/learner_cost.py [--steps 3] [--batch 4] [--tokens 256] [--new-tokens 48]

Measures, on batches of ``--batch`` x ``--tokens`` tokens built in the training format:

* seconds per optimiser step and peak RSS for a Phase-0 LoRA (r=8 on q/k/v/o) and for Phase-2
  Share coefficients (p=4), the first step excluded as warm-up; 100 steps are *extrapolated*
  from the mean of the measured ones;
* trainable parameters of one Share route vs an r=8 LoRA on the same modules (the true ratio);
* the time to switch routes (``ShareAdapters.activate``);
* greedy tokens/s with a route active vs the base model (prompt lookup off, same prompt),
  interleaved repetitions, medians and per-repetition ratios.

The basis is fitted (Phase 1) to the LoRA trained here plus three LoRA-initialised factor sets
(peft's init: kaiming A, small random B) standing in for other routes, so its widths are those
of a 4-route basis; the measured costs do not depend on the values.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil
import torch

from learner.config import Settings
from learner.fix.prompt import SYSTEM_PROMPT, format_answer
from learner.learn.train import Encoded, TrainConfig, encode_example, train_lora_route, train_route_coefficients
from learner.model.runtime import load_runtime
from learner.share import ShareAdapters, ShareConfig

CODE = """fn summarise(values: &[i64]) -> (i64, i64, f64) {
    let mut lowest = i64::MAX;
    let mut highest = i64::MIN;
    let mut total = 0;
    for value in values {
        lowest = lowest.min(*value);
        highest = highest.max(*value);
        total += value;
    }
    (lowest, highest, total as f64 / values.len() as f64)
}
"""


class PeakRss:
    """Samples this process's RSS every 20 ms; ``peak`` is the maximum since ``reset``."""

    def __init__(self) -> None:
        self.peak = 0
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(0.02)

    def reset(self) -> None:
        self.peak = self._process.memory_info().rss


def examples(runtime: object, batch: int, tokens: int) -> list[Encoded]:
    broken = CODE.replace("let mut total", "let total")
    user = (
        "Fix this Rust compile error (error family: mutability).\nHint: add `mut`.\n\nCompiler output:\n```\n"
        "error[E0384]: cannot assign twice to immutable variable `total`\n```\n\n"
        f"### Region 1: src/lib.rs, fn summarise\n```rust\n{broken * 3}```"
    )
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
    answer = format_answer([(1, CODE)])
    out = [
        encode_example(runtime.tokenizer, runtime.render_prompt, messages, answer, tokens)  # type: ignore[attr-defined]
        for _ in range(batch)
    ]
    assert all(len(e.input_ids) == tokens for e in out), [len(e.input_ids) for e in out]
    return out


def stand_in_factors(real: dict[str, tuple[torch.Tensor, torch.Tensor]], seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for name, (b, a) in real.items():
        new_a = torch.randn(a.shape, generator=generator) / a.shape[1] ** 0.5
        new_b = torch.randn(b.shape, generator=generator) * 1e-2
        out[name] = (new_b, new_a)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--gen-reps", type=int, default=5, help="interleaved generation repetitions")
    parser.add_argument("--model", default=None)
    args = parser.parse_args()

    settings = Settings(model=args.model) if args.model else Settings()
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    rss = PeakRss()
    t0 = time.perf_counter()
    runtime = load_runtime(settings)
    print(f"model {runtime.model_name} loaded in {time.perf_counter() - t0:.1f} s; threads {torch.get_num_threads()}")
    data = examples(runtime, args.batch, args.tokens)
    pad = runtime.tokenizer.pad_token_id or 0
    work = Path(settings.cache_dir) / "bench-learner"
    share_config = ShareConfig(base_model=settings.model)
    config = TrainConfig(steps=args.steps + 1, batch_size=args.batch, max_tokens=args.tokens, checkpoint_every=10**6)

    lora_times: list[float] = []
    rss.reset()
    model, lora, factors = train_lora_route(
        runtime.model,
        data,
        share_config,
        config,
        pad_id=pad,
        out_dir=work / f"lora-{time.time_ns()}",
        checkpoint_dir=work / f"ckpt-lora-{time.time_ns()}",
        on_step=lambda step, total, loss, rate, seconds: lora_times.append(seconds),
    )
    lora_peak = rss.peak
    runtime.model = model
    assert factors is not None
    routes = {"trained": factors, **{f"other{i}": stand_in_factors(factors, i) for i in range(3)}}
    adapters = ShareAdapters.from_lora(model, routes, share_config)

    coef_times: list[float] = []
    rss.reset()
    coef = train_route_coefficients(
        adapters,
        "new-route",
        data,
        dataclasses_replace(config, lr=1e-3),
        pad_id=pad,
        checkpoint_dir=work / f"ckpt-coef-{time.time_ns()}",
        on_step=lambda step, total, loss, rate, seconds: coef_times.append(seconds),
    )
    coef_peak = rss.peak

    lora_step = statistics.mean(lora_times[1:])
    coef_step = statistics.mean(coef_times[1:])
    print(f"batch {args.batch} x {args.tokens} tokens, {args.steps} measured steps after 1 warm-up step")
    print(
        f"LoRA r=8   : {lora_step:6.2f} s/step (min {min(lora_times[1:]):.2f}), peak RSS {lora_peak / 2**30:.2f} GiB,"
        f" {lora.trainable_parameters:,} trainable"
    )
    print(
        f"Share coef : {coef_step:6.2f} s/step (min {min(coef_times[1:]):.2f}), peak RSS {coef_peak / 2**30:.2f} GiB,"
        f" {coef.extra['trainable_parameters']:,} trainable"
    )
    print(
        f"100 coefficient steps extrapolated from the mean: {100 * coef_step / 60:.1f} min (target < 15 min); "
        f"LoRA: {100 * lora_step / 60:.1f} min"
    )
    print(
        f"parameter ratio vs r=8 LoRA on the same modules: {coef.extra['lora_equivalent_parameters']:,} / "
        f"{coef.extra['trainable_parameters']:,} = {coef.extra['parameter_ratio']:.1f}x (target >= 20x)"
    )
    widths = sorted({(b.k_b, b.k_a) for b in adapters.bases.values()})
    print(f"basis widths (k_B, k_A) per module: {widths[:4]}{' ...' if len(widths) > 4 else ''}")

    switches = 2000
    t0 = time.perf_counter()
    for i in range(switches):
        adapters.activate("new-route" if i % 2 else "trained")
    print(f"route switch: {(time.perf_counter() - t0) / switches * 1e6:.1f} us")
    adapters.activate(None)

    runtime.attach_adapters(adapters)
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "Write " + CODE}]
    speeds: dict[str, list[float]] = {"base": [], "route": []}
    runtime.generate(messages, max_new_tokens=8, prompt_lookup=False)  # warm-up
    for _ in range(args.gen_reps):  # interleaved, so drift in machine load hits both alike
        for label, route in (("base", None), ("route", "new-route")):
            gen = runtime.generate(messages, max_new_tokens=args.new_tokens, route=route, prompt_lookup=False)
            speeds[label].append(gen.new_tokens / gen.seconds)
    base, routed = statistics.median(speeds["base"]), statistics.median(speeds["route"])
    ratios = sorted(b / r for b, r in zip(speeds["base"], speeds["route"], strict=True))
    print(
        f"generation ({args.gen_reps} interleaved reps, medians): base {base:.1f} tok/s "
        f"[{min(speeds['base']):.1f}-{max(speeds['base']):.1f}], route active {routed:.1f} tok/s "
        f"[{min(speeds['route']):.1f}-{max(speeds['route']):.1f}]; slowdown {base / routed:.3f}x, "
        f"per-rep {ratios[0]:.3f}-{ratios[-1]:.3f}x (target <= 1.10x)"
    )


def dataclasses_replace(config: TrainConfig, **changes: float) -> TrainConfig:
    import dataclasses

    return dataclasses.replace(config, **changes)


if __name__ == "__main__":
    main()
