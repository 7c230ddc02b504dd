"""A tiny random Qwen2 chat model with a real tokenizer, built offline in a few seconds.

Tests of the model tier (runtime, training, adapters) need a real transformers model that
loads through the ordinary ``Settings(model=str(folder))`` path, but no test may download
weights. So we train a small byte-level BPE on some Rust text, give it Qwen's ChatML special
tokens and chat template, and save it next to a randomly initialised 2-layer Qwen2 model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: Qwen2.5's ChatML template, minus the tool-calling branches we never use.
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if not (message['role'] == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_RUST_CORPUS = """
use std::collections::HashMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub struct Point { pub x: i32, pub y: i32 }

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.x, self.y)
    }
}

pub fn count_words(text: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for word in text.split_whitespace() {
        *counts.entry(word.to_string()).or_insert(0) += 1;
    }
    counts
}

fn main() {
    let p = Point { x: 1, y: 2 };
    let s: String = format!("{}", p);
    let v: Vec<u32> = vec![1, 2, 3];
    let total: u32 = v.iter().sum();
    println!("{} {}", s, total);
    let name = String::from("ferris");
    let borrowed = &name;
    match borrowed.len() { 0 => println!("empty"), n => println!("{n}") }
}
error[E0308]: mismatched types
 --> src/main.rs:4:18
  |
4 |     let x: i32 = "five";
  |            ---   ^^^^^^ expected `i32`, found `&str`
error[E0382]: borrow of moved value: `name`
error[E0425]: cannot find value `totl` in this scope
help: a local variable with a similar name exists: `total`
You are a helpful assistant. Fix the Rust code so that it compiles.
"""


def build_tiny_model(folder: Path, *, vocab_size: int = 600, seed: int = 0) -> Path:
    """Write a tiny random Qwen2ForCausalLM and its ChatML tokenizer to ``folder``; returns it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([_RUST_CORPUS] * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
        chat_template=CHAT_TEMPLATE,
    )

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        # Wider than the usual 0.02 so greedy decoding gives varied text instead of one repeated
        # token: tests can then tell a changed model (an adapter) from an unchanged one.
        initializer_range=0.3,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny model per test session, shared read-only by every test that needs a model."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model") / "model")
