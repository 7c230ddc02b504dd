"""Training loops of the learner: Phase-0 LoRA per route, Phase-2 Share coefficients, naive LoRA.

One loop serves all three (:func:`train_loop`): the only differences are *which* parameters
are trainable and where they live. Examples are encoded exactly as inference sees them
(:meth:`learner.model.runtime.ModelRuntime.render_prompt` + answer + end-of-turn token) and the loss
covers the answer only (prompt labels are -100), weighted per example (an edited user fix
counts more than a mutation). Runs are checkpointed (trainable tensors, optimiser, step,
losses) atomically every few steps and resume bit-for-bit: the batch of step ``s`` depends only
on the seed and ``s``.

torch, transformers and peft are imported inside functions so the CLI starts fast.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from learner.errors import SleepyCoderError
from learner.files import write_atomic_dir
from learner.learn.examples import TrainingExample

if TYPE_CHECKING:
    import torch
    from torch import nn

    from learner.share import LoraFactors, ShareAdapters, ShareConfig

IGNORE_INDEX = -100
#: Tokens of the prompt's head kept when a long prompt is cut in the middle (system prompt and task).
_HEAD_SHARE = 0.25

#: ``on_step(step, total_steps, loss, examples_per_s, seconds)`` after every optimiser step.
StepCallback = Callable[[int, int, float, float, float], None]


class TrainingError(SleepyCoderError):
    """Training cannot run (no examples, an unreadable checkpoint, a model without the target modules)."""


@dataclass
class TrainConfig:
    """Knobs of one training run (Phase 0, Phase 2 or the naive baseline)."""

    steps: int = 100
    batch_size: int = 4
    max_tokens: int = 256
    grad_accum: int = 1
    lr: float = 2e-4
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 0
    checkpoint_every: int = 10

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Encoded:
    """One example as token ids; ``labels`` are -100 except on the answer (and its end token)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    weight: float = 1.0


@dataclass
class TrainOutcome:
    losses: list[float]
    steps_done: int
    finished: bool
    seconds: float
    trainable_parameters: int
    #: Optimiser steps run by this call (the rest were restored from a checkpoint).
    steps_this_call: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- encoding


def end_of_turn_id(tokenizer: Any) -> int:
    """The token that ends an assistant turn: ChatML's ``<|im_end|>`` where it exists, else eos."""
    vocab = tokenizer.get_vocab()
    if "<|im_end|>" in vocab:
        return int(vocab["<|im_end|>"])
    if tokenizer.eos_token_id is None:
        raise TrainingError("the tokenizer has no end-of-sequence token to end answers with")
    return int(tokenizer.eos_token_id)


def encode_example(
    tokenizer: Any,
    render_prompt: Callable[[list[dict[str, str]]], str],
    messages: Sequence[Mapping[str, str]],
    answer: str,
    max_tokens: int,
    weight: float = 1.0,
) -> Encoded:
    """``render_prompt(messages)`` + ``answer`` + end-of-turn, labels on the answer only.

    Prompt and answer are tokenised separately, as at inference (the model starts generating
    right after the prompt's last token). Too long: the prompt is cut in the middle (its head
    - system prompt and task - and its tail - the code regions - stay) and the answer is kept
    whole unless it alone exceeds three quarters of the budget, when its end is cut.
    """
    prompt = render_prompt([dict(m) for m in messages])
    prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    answer_ids = [*tokenizer(answer, add_special_tokens=False)["input_ids"], end_of_turn_id(tokenizer)]
    answer_ids = answer_ids[: max(1, (3 * max_tokens) // 4)] if len(answer_ids) > (3 * max_tokens) // 4 else answer_ids
    room = max_tokens - len(answer_ids)
    if len(prompt_ids) > room:
        head = int(room * _HEAD_SHARE)
        prompt_ids = prompt_ids[:head] + prompt_ids[len(prompt_ids) - (room - head) :]
    return Encoded(
        tuple(prompt_ids + answer_ids),
        tuple([IGNORE_INDEX] * len(prompt_ids) + answer_ids),
        float(weight),
    )


def encode_rows(
    tokenizer: Any,
    render_prompt: Callable[[list[dict[str, str]]], str],
    examples: Sequence[TrainingExample],
    max_tokens: int,
) -> list[Encoded]:
    """Encode training examples (prompt messages, answer, loss weight)."""
    return [
        encode_example(tokenizer, render_prompt, [dict(m) for m in ex.messages], ex.answer, max_tokens, ex.weight)
        for ex in examples
    ]


def collate(batch: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded tensors: input_ids, attention_mask, labels (-100 on padding), weights."""
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, example in enumerate(batch):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        mask[row, :n] = 1
    weights = torch.tensor([e.weight for e in batch], dtype=torch.float32)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "weights": weights}


def weighted_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over examples of (weight x mean token cross-entropy on that example's answer).

    Per-example means keep a long answer from outweighing a short one; the weights normalise
    to the batch so the learning rate means the same whatever the mix of weights.
    """
    import torch.nn.functional as F

    shifted = logits[:, :-1, :].float()
    target = labels[:, 1:]
    token_loss = F.cross_entropy(
        shifted.reshape(-1, shifted.shape[-1]), target.reshape(-1), ignore_index=IGNORE_INDEX, reduction="none"
    ).view(target.shape)
    counts = (target != IGNORE_INDEX).sum(dim=1).clamp_min(1)
    per_example = token_loss.sum(dim=1) / counts
    w = weights.to(per_example.device)
    return (per_example * w).sum() / w.sum().clamp_min(1e-12)


def scored_positions(labels: torch.Tensor) -> int:
    """How many trailing positions need logits: from the one before the batch's first answer token.

    The logit at position ``p`` predicts token ``p + 1``, so nothing before the earliest answer
    is scored. Prompts are most of each example and the vocabulary projection is about a
    quarter of a forward pass for a 0.5B model, so computing it only here saves real time;
    the loss is the same (up to float rounding).
    """
    answer = (labels != IGNORE_INDEX).any(dim=0).nonzero()
    width = int(labels.shape[1])
    return width if answer.numel() == 0 else width - max(0, int(answer[0]) - 1)


def batch_indices(n: int, batch_size: int, seed: int, index: int) -> list[int]:
    """The examples of micro-batch ``index``: epoch-wise seeded permutations, so resuming repeats them."""
    import torch

    out = []
    start = index * batch_size
    for position in range(start, start + batch_size):
        epoch, offset = divmod(position, n)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
        out.append(int(order[offset]))
    return out


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(
    folder: Path,
    params: Mapping[str, torch.Tensor],
    optimizer: Any,
    step: int,
    losses: list[float],
    meta: dict[str, Any],
) -> None:
    import torch
    from safetensors.torch import save_file

    def fill(tmp: Path) -> None:
        save_file({k: v.detach().cpu().contiguous() for k, v in params.items()}, str(tmp / "params.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step, "losses": losses, **meta}))

    write_atomic_dir(folder, fill)


def load_checkpoint(folder: Path, params: Mapping[str, torch.Tensor], optimizer: Any) -> tuple[int, list[float]]:
    """Restore tensors and optimiser from ``folder``; returns (step, losses). (0, []) when there is none."""
    import torch
    from safetensors.torch import load_file

    if not (folder / "state.json").is_file():
        return 0, []
    try:
        state = json.loads((folder / "state.json").read_text())
        tensors = load_file(str(folder / "params.safetensors"))
        with torch.no_grad():
            for name, param in params.items():
                param.copy_(tensors[name].to(param.device, param.dtype))
        optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise TrainingError(
            f"checkpoint {folder} is unreadable or does not fit this run ({exc}); delete it to restart"
        ) from exc
    return int(state["step"]), [float(x) for x in state["losses"]]


# ----------------------------------------------------------------------------- the loop


def train_loop(
    model: nn.Module,
    params: Mapping[str, torch.nn.Parameter],
    examples: Sequence[Encoded],
    config: TrainConfig,
    *,
    pad_id: int,
    checkpoint_dir: Path | None = None,
    on_step: StepCallback | None = None,
    stop_after: int | None = None,
    batch_offset: int = 0,
) -> TrainOutcome:
    """AdamW on ``params`` (everything else must be frozen) for ``config.steps`` optimiser steps.

    Resumes from ``checkpoint_dir`` when it holds a checkpoint. ``stop_after`` ends this call
    after that many steps (a checkpoint is written), which is how an interrupted run is tested.
    ``batch_offset`` shifts the data order (the naive baseline's later routes).
    """
    import torch

    if not examples:
        raise TrainingError("no training examples")
    trainable = [p for p in params.values()]
    for p in trainable:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    step, losses = 0, list[float]()
    if checkpoint_dir is not None:
        step, losses = load_checkpoint(checkpoint_dir, params, optimizer)
    device = next(iter(params.values())).device
    started = time.perf_counter()
    done_here = 0
    was_training = model.training
    model.eval()  # no dropout: Qwen has none by default, and determinism matters for resume
    try:
        while step < config.steps:
            if stop_after is not None and done_here >= stop_after:
                break
            t0 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            total = 0.0
            for micro in range(config.grad_accum):
                index = batch_offset + step * config.grad_accum + micro
                batch = collate(
                    [examples[i] for i in batch_indices(len(examples), config.batch_size, config.seed, index)], pad_id
                )
                keep = scored_positions(batch["labels"])
                logits = model(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                    logits_to_keep=keep,
                ).logits
                labels = batch["labels"][:, batch["labels"].shape[1] - keep :].to(device)
                loss = weighted_loss(logits, labels, batch["weights"]) / config.grad_accum
                loss.backward()
                total += float(loss.detach())
            if config.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
            optimizer.step()
            step += 1
            done_here += 1
            losses.append(total if math.isfinite(total) else float("nan"))
            seconds = time.perf_counter() - t0
            if checkpoint_dir is not None and (step % config.checkpoint_every == 0 or step == config.steps):
                save_checkpoint(checkpoint_dir, params, optimizer, step, losses, {"config": config.to_dict()})
            if on_step is not None:
                on_step(step, config.steps, total, config.batch_size * config.grad_accum / max(seconds, 1e-9), seconds)
        if checkpoint_dir is not None and step < config.steps and done_here:
            save_checkpoint(checkpoint_dir, params, optimizer, step, losses, {"config": config.to_dict()})
    finally:
        optimizer.zero_grad(set_to_none=True)
        for p in trainable:
            p.requires_grad_(False)
        model.train(was_training)
    return TrainOutcome(
        losses=losses,
        steps_done=step,
        finished=step >= config.steps,
        seconds=time.perf_counter() - started,
        trainable_parameters=sum(p.numel() for p in trainable),
        steps_this_call=done_here,
    )


# ----------------------------------------------------------------------------- Phase 0 and the naive baseline


def lora_config(share_config: ShareConfig) -> Any:
    """The peft LoraConfig of Phase 0 (rank, alpha, target modules from the Share knobs)."""
    from peft import LoraConfig

    return LoraConfig(
        r=share_config.lora_r,
        lora_alpha=share_config.lora_alpha,
        lora_dropout=0.0,
        bias="none",
        target_modules=list(share_config.target_modules),
        task_type="CAUSAL_LM",
    )


def _freeze(model: nn.Module) -> None:
    for p in model.parameters():
        p.requires_grad_(False)


def _lora_params(peft_model: nn.Module) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in peft_model.named_parameters() if "lora_" in n}


def train_lora_sequence(
    model: nn.Module,
    routes: Sequence[tuple[str, Sequence[Encoded]]],
    share_config: ShareConfig,
    config: TrainConfig,
    *,
    pad_id: int,
    out_dir: Path,
    checkpoint_root: Path,
    on_step: Callable[[str], StepCallback | None] | None = None,
    stop_after: int | None = None,
) -> tuple[nn.Module, dict[str, TrainOutcome]]:
    """One LoRA trained on ``routes`` one after another (the naive baseline); saved as a peft adapter.

    Each route gets ``config.steps`` steps and its own checkpoint folder; a finished route is
    skipped on resume (its checkpoint holds the LoRA after it). Returns the unwrapped base model
    (LoRA layers removed, weights untouched) and each route's outcome.
    """
    from peft import get_peft_model

    _freeze(model)
    peft_model = get_peft_model(model, lora_config(share_config))
    outcomes: dict[str, TrainOutcome] = {}
    budget = stop_after
    try:
        params = _lora_params(peft_model)
        for index, (route, examples) in enumerate(routes):
            ckpt = checkpoint_root / f"{index:02d}-{route}"
            outcome = train_loop(
                peft_model,
                params,
                examples,
                config,
                pad_id=pad_id,
                checkpoint_dir=ckpt,
                on_step=on_step(route) if on_step else None,
                stop_after=budget,
            )
            outcomes[route] = outcome
            if not outcome.finished:
                return peft_model.unload(), outcomes
            if budget is not None:
                budget = max(0, budget - outcome.steps_this_call)
        write_atomic_dir(out_dir, lambda tmp: peft_model.save_pretrained(str(tmp)))
    except BaseException:
        peft_model.unload()
        raise
    return peft_model.unload(), outcomes


def train_lora_route(
    model: nn.Module,
    examples: Sequence[Encoded],
    share_config: ShareConfig,
    config: TrainConfig,
    *,
    pad_id: int,
    out_dir: Path,
    checkpoint_dir: Path,
    on_step: StepCallback | None = None,
    stop_after: int | None = None,
) -> tuple[nn.Module, TrainOutcome, LoraFactors | None]:
    """Phase 0 for one route: a fresh LoRA, trained, saved as a peft adapter in ``out_dir``.

    Returns the unwrapped base model, the outcome and (when finished) the LoRA factors with the
    scaling folded into B, ready for :meth:`ShareAdapters.from_lora`.
    """
    from learner.share import lora_factors_from_peft

    _freeze(model)
    import torch

    torch.manual_seed(config.seed)  # peft's LoRA A init draws from the global RNG
    from peft import get_peft_model

    peft_model = get_peft_model(model, lora_config(share_config))
    try:
        outcome = train_loop(
            peft_model,
            _lora_params(peft_model),
            examples,
            config,
            pad_id=pad_id,
            checkpoint_dir=checkpoint_dir,
            on_step=on_step,
            stop_after=stop_after,
        )
        factors = None
        if outcome.finished:
            write_atomic_dir(out_dir, lambda tmp: peft_model.save_pretrained(str(tmp)))
            factors = lora_factors_from_peft(out_dir)
    finally:
        base = peft_model.unload()
    return base, outcome, factors


# ----------------------------------------------------------------------------- Phase 2


def train_route_coefficients(
    adapters: ShareAdapters,
    route: str,
    examples: Sequence[Encoded],
    config: TrainConfig,
    *,
    pad_id: int,
    checkpoint_dir: Path,
    on_step: StepCallback | None = None,
    stop_after: int | None = None,
    init_from: str | None = None,
) -> TrainOutcome:
    """Phase 2: train only ``route``'s coefficients (basis and base model frozen).

    A fresh run creates the route (seeded init, or a copy of ``init_from``); a resumed run
    re-creates it the same way and loads the checkpoint over it.
    """
    _freeze(adapters.model)
    tensors = adapters.new_route(route, init_from=init_from, replace=True)
    params = {f"coef.{i}": p for i, p in enumerate(tensors)}
    adapters.activate(route)
    try:
        outcome = train_loop(
            adapters.model,
            params,
            examples,
            config,
            pad_id=pad_id,
            checkpoint_dir=checkpoint_dir,
            on_step=on_step,
            stop_after=stop_after,
        )
    finally:
        adapters.activate(None)
    lora_equivalent = adapters.lora_equivalent_parameters(adapters.config.lora_r)
    outcome.extra = {
        "trainable_parameters": adapters.trainable_parameters(route),
        "lora_equivalent_parameters": lora_equivalent,
        "parameter_ratio": lora_equivalent / max(1, adapters.trainable_parameters(route)),
    }
    return outcome
