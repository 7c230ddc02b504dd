"""Training: the loss mask, Phases 0-3 end to end on the tiny model, Share behaviour, registry and resume."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from learner.config import Settings
from learner.learn.curriculum import load_training_set
from learner.learn.phases import LearnOptions, LearnReport, artifact_metrics, run_learning
from learner.learn.train import (
    IGNORE_INDEX,
    collate,
    encode_example,
    end_of_turn_id,
    scored_positions,
    weighted_loss,
)
from learner.model.runtime import ModelRuntime, load_runtime
from learner.records import SHARE_ROUTE
from learner.share import ShareAdapters
from learner.store import Store
from tests.learn.test_curriculum import CORPUS

NEW_ROUTE = "struct-fields"


def _options(**kw: Any) -> LearnOptions:
    base = LearnOptions(
        routes=(NEW_ROUTE,),
        steps=4,
        per_route=4,
        min_examples=1,
        use_docs=False,
        lora_lr=2e-2,
        coef_lr=5e-2,
        batch_size=2,
        max_tokens=160,
        checkpoint_every=1,
        share={"k_min": 1},
    )
    return dataclasses.replace(base, **kw)


def _settings(root: Path, model_dir: Path) -> Settings:
    s = Settings(model=str(model_dir), data_dir=root / "data", cache_dir=root / "cache")
    s.ensure_dirs()
    return s


@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[Settings, LearnReport]:
    torch.manual_seed(0)
    settings = _settings(tmp_path_factory.mktemp("learn"), tiny_model_dir)
    report = run_learning(settings, _options(), snippets=CORPUS)
    return settings, report


def _runtime(settings: Settings) -> ModelRuntime:
    runtime = load_runtime(settings)
    runtime.model.float()  # exact logit comparisons without bf16 rounding noise
    return runtime


def _logits(runtime: ModelRuntime, text: str = "fn main() { let x = 1; }") -> torch.Tensor:
    ids = runtime.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        return runtime.model(input_ids=ids).logits


def test_loss_mask_covers_only_the_answer(settings: Settings, tiny_model_dir: Path) -> None:
    runtime = load_runtime(dataclasses.replace(settings, model=str(tiny_model_dir)))
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "fix " * 40}]
    answer = "### Region 1\n```rust\nfn main() {}\n```"
    full = encode_example(runtime.tokenizer, runtime.render_prompt, messages, answer, max_tokens=4096)
    answer_positions = [i for i, label in enumerate(full.labels) if label != IGNORE_INDEX]
    first = answer_positions[0]
    assert answer_positions == list(range(first, len(full.input_ids)))
    prompt_text = runtime.tokenizer.decode(full.input_ids[:first])
    assert prompt_text == runtime.render_prompt(messages)
    assert runtime.tokenizer.decode(full.labels[first:-1]) == answer
    assert full.labels[-1] == end_of_turn_id(runtime.tokenizer)
    short = encode_example(runtime.tokenizer, runtime.render_prompt, messages, answer, max_tokens=48)
    assert len(short.input_ids) == 48
    assert short.labels[-len(full.labels[first:]) :] == full.labels[first:]  # the whole answer survives
    batch = collate([short, full], pad_id=0)
    assert (batch["labels"][0, 48:] == IGNORE_INDEX).all() and batch["attention_mask"][0, 48:].sum() == 0
    logits = torch.zeros(2, batch["input_ids"].shape[1], 5000)
    assert float(weighted_loss(logits, batch["labels"], batch["weights"])) == pytest.approx(
        float(torch.log(torch.tensor(5000.0)))
    )


def test_loss_on_the_scored_positions_alone_equals_the_full_loss(settings: Settings, tiny_model_dir: Path) -> None:
    runtime = _runtime(dataclasses.replace(settings, model=str(tiny_model_dir)))
    answer = "### Region 1\n```rust\nfn main() {}\n```"
    long = [{"role": "system", "content": "sys"}, {"role": "user", "content": "fix " * 40}]
    short = [{"role": "system", "content": "sys"}, {"role": "user", "content": "fix"}]
    examples = [encode_example(runtime.tokenizer, runtime.render_prompt, m, answer, 4096) for m in (long, short)]
    batch = collate(examples, pad_id=0)
    labels = batch["labels"]
    keep = scored_positions(labels)
    first_answer = min(e.labels.index(next(x for x in e.labels if x != IGNORE_INDEX)) for e in examples)
    assert keep == labels.shape[1] - (first_answer - 1) < labels.shape[1]
    with torch.no_grad():
        full = runtime.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        kept = runtime.model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep
        ).logits
    assert kept.shape[1] == keep
    expected = float(weighted_loss(full, labels, batch["weights"]))
    assert float(weighted_loss(kept, labels[:, -keep:], batch["weights"])) == pytest.approx(expected, rel=1e-5)
    assert scored_positions(torch.full((2, 7), IGNORE_INDEX)) == 7


def test_phases_0_to_3_run_end_to_end_and_the_loss_goes_down(learned: tuple[Settings, LearnReport]) -> None:
    _, report = learned
    assert report.finished and report.phases_done == [0, 1, 2, 3]
    metrics = artifact_metrics(report.artifact)  # type: ignore[arg-type]
    for route, entry in metrics["phase0"].items():
        assert len(entry["losses"]) == 4 and entry["losses"][-1] < entry["losses"][0], route
    phase2 = metrics["phase2"][NEW_ROUTE]
    assert phase2["losses"][-1] < phase2["losses"][0]
    assert phase2["parameter_ratio"] == phase2["lora_equivalent_parameters"] / phase2["trainable_parameters"] > 1
    assert metrics["phase3"][NEW_ROUTE]["folded"] in (True, False)
    assert set(metrics["reconstruction_errors"]) == set(metrics["routes"]) and NEW_ROUTE in metrics["routes"]
    assert NEW_ROUTE not in metrics["phase0"]


def test_artifact_round_trips_through_the_registry(learned: tuple[Settings, LearnReport], tmp_path: Path) -> None:
    settings, report = learned
    with Store.open(settings) as store:
        record = store.adapter(report.version)  # type: ignore[arg-type]
    assert record.status == "candidate" and record.route == SHARE_ROUTE and Path(record.path) == report.artifact
    assert not any(p.name.startswith(".") for p in settings.adapters_dir.iterdir())  # no temp dirs left
    runtime = _runtime(settings)
    first = ShareAdapters.load(runtime.model, record.path)
    assert set(first.routes) == set(record.metrics["routes"])
    assert first.trainable_parameters(NEW_ROUTE) == record.metrics["parameters"][NEW_ROUTE]
    first.activate(NEW_ROUTE)
    before = _logits(runtime)
    first.save(tmp_path / "again")
    first.detach()
    second = ShareAdapters.load(runtime.model, tmp_path / "again")
    second.activate(NEW_ROUTE)
    assert torch.equal(_logits(runtime), before)


def test_fallback_gives_exactly_the_base_logits_and_a_trained_route_does_not(
    learned: tuple[Settings, LearnReport],
) -> None:
    settings, report = learned
    runtime = _runtime(settings)
    base = _logits(runtime)
    adapters = ShareAdapters.load(runtime.model, report.artifact)  # type: ignore[arg-type]
    adapters.activate("fallback")
    assert torch.equal(_logits(runtime), base)
    adapters.activate(NEW_ROUTE)
    assert not torch.allclose(_logits(runtime), base)


def test_phase2_gradients_reach_both_coefficient_sets_at_initialisation(learned: tuple[Settings, LearnReport]) -> None:
    settings, report = learned
    runtime = _runtime(settings)
    adapters = ShareAdapters.load(runtime.model, report.artifact)  # type: ignore[arg-type]
    params = adapters.new_route("brand-new")
    adapters.activate("brand-new")
    for p in runtime.model.parameters():
        p.requires_grad_(False)
    rows = load_training_set(Path(report.training_sets[NEW_ROUTE]))
    example = encode_example(
        runtime.tokenizer, runtime.render_prompt, [dict(m) for m in rows[0].messages], rows[0].answer, 160
    )
    batch = collate([example], pad_id=0)
    logits = runtime.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    weighted_loss(logits, batch["labels"], batch["weights"]).backward()
    eps_b, eps_a = params[0::2], params[1::2]
    assert all(p.grad is not None for p in params)
    assert sum(float(p.grad.abs().sum()) for p in eps_b) > 0  # type: ignore[union-attr]
    assert sum(float(p.grad.abs().sum()) for p in eps_a) > 0  # type: ignore[union-attr]


def test_an_interrupted_run_resumes_from_its_checkpoint_to_the_same_result(
    tmp_path: Path, tiny_model_dir: Path, learned: tuple[Settings, LearnReport]
) -> None:
    _, full = learned
    settings = _settings(tmp_path, tiny_model_dir)
    options = _options()
    stopped = run_learning(settings, options, snippets=CORPUS, stop_after=6)
    assert not stopped.finished and stopped.version is None
    with Store.open(settings) as store:
        assert store.adapters(route=SHARE_ROUTE) == []
    resumed = run_learning(settings, options, snippets=CORPUS, resume=True)
    assert resumed.finished and resumed.run_dir == stopped.run_dir and resumed.version
    expected = artifact_metrics(full.artifact)  # type: ignore[arg-type]
    got = artifact_metrics(resumed.artifact)  # type: ignore[arg-type]
    for route, entry in expected["phase0"].items():
        assert got["phase0"][route]["losses"] == pytest.approx(entry["losses"], rel=1e-4), route
    assert got["phase2"][NEW_ROUTE]["losses"] == pytest.approx(expected["phase2"][NEW_ROUTE]["losses"], rel=1e-4)
    with pytest.raises(Exception, match="no unfinished learning run"):
        run_learning(settings, options, snippets=CORPUS, resume=True)


def test_naive_baseline_is_saved_as_a_peft_adapter_and_registered(tmp_path: Path, tiny_model_dir: Path) -> None:
    settings = _settings(tmp_path, tiny_model_dir)
    report = run_learning(settings, _options(steps=2, naive=True, promote=True), snippets=CORPUS)
    assert report.promoted and report.naive_artifact is not None
    assert (report.naive_artifact / "adapter_config.json").is_file()
    assert report.naive_artifact.parent == settings.adapters_dir / "naive-lora"
    with Store.open(settings) as store:
        assert store.active_versions()[SHARE_ROUTE].version == report.version
        assert store.adapter(report.naive_version).route == "naive-lora"  # type: ignore[arg-type]
