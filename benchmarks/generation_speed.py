"""How fast the embedded model writes a fix, with and without prompt-lookup decoding (run by hand).

A fix mostly repeats the code it was shown, so prompt lookup (drafting the next tokens from the
prompt and checking them in one forward pass) should multiply tokens/s. This measures it on
realistic requests: ~40 lines of Rust with one compile error, the error as rustc renders it
(produced by running the real rustc), and the corrected code as the answer.

    python benchmarks/generation_speed.py [--reps 3] [--max-new-tokens 512] [--device cpu]

Prints tokens/s per case and mode (median and min-max over repetitions) and the speed-up.
Both modes decode greedily, so their answers must be identical; a difference is reported.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learner.config import Settings
from learner.fix.prompt import SYSTEM_PROMPT
from learner.model.runtime import Generation, ModelRuntime, load_runtime

INVENTORY = """\
use std::collections::HashMap;

#[derive(Debug, Clone)]
struct Item {
    name: String,
    quantity: u32,
    price_cents: u64,
}

struct Inventory {
    items: HashMap<String, Item>,
}

impl Inventory {
    fn new() -> Self {
        Inventory { items: HashMap::new() }
    }

    fn add(&mut self, name: &str, quantity: u32, price_cents: u64) {
        let entry = self.items.entry(name.to_string()).or_insert(Item {
            name: name.to_string(),
            quantity: 0,
            price_cents,
        });
        entry.quantity += quantity;
    }

    fn total_value(&self) -> u64 {
        let mut total: u32 = 0;
        for item in self.items.values() {
            total += item.quantity as u64 * item.price_cents;
        }
        total
    }
}

fn main() {
    let mut inventory = Inventory::new();
    inventory.add("bolt", 40, 12);
    inventory.add("nut", 100, 3);
    println!("total: {}", inventory.total_value());
}
"""

REPORT = """\
#[derive(Debug)]
struct Reading {
    sensor: String,
    celsius: f64,
}

fn parse_line(line: &str) -> Option<Reading> {
    let mut parts = line.split(',');
    let sensor = parts.next()?.trim().to_string();
    let celsius = parts.next()?.trim().parse().ok()?;
    Some(Reading { sensor, celsius })
}

fn summarize(readings: Vec<Reading>) -> String {
    let mut lines = Vec::new();
    for reading in readings {
        lines.push(format!("{}: {:.1}", reading.sensor, reading.celsius));
    }
    lines.join("\\n")
}

fn hottest(readings: &[Reading]) -> Option<&Reading> {
    readings
        .iter()
        .max_by(|a, b| a.celsius.partial_cmp(&b.celsius).unwrap())
}

fn main() {
    let input = "kitchen, 21.5\\nattic, 29.0\\ncellar, 12.25";
    let readings: Vec<Reading> = input.lines().filter_map(parse_line).collect();
    let summary = summarize(readings);
    println!("{}", summary);
    if let Some(top) = hottest(&readings) {
        println!("hottest: {} at {:.1}", top.sensor, top.celsius);
    }
    let count = readings.len();
    println!("{} readings", count);
}
"""

WORDS = """\
use std::collections::BTreeMap;
use std::fmt;

struct WordStats {
    counts: BTreeMap<String, usize>,
    longest: String,
}

impl WordStats {
    fn from_text(text: &str) -> WordStats {
        let mut counts = BTreeMap::new();
        let mut longest = String::new();
        for word in text.split_whitespace() {
            let word = word.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
            if word.is_empty() {
                continue;
            }
            if word.len() > longest.len() {
                longest = word.clone();
            }
            *counts.entry(word).or_insert(0) += 1;
        }
        WordStats { counts, longest }
    }
}

impl fmt::Display for WordStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (word, count) in &self.counts {
            writeln!(f, "{word:>12} {count}")?;
        }
        write!(f, "longest word: {}", self.longest)
    }
}

fn main() {
    let text = "The quick brown fox jumps over the lazy dog. The dog sleeps.";
    let stats = WordStats::from_text(text);
    println!("{}", stat);
    println!("{} distinct words", stats.counts.len());
}
"""

CASES = {"E0308 mismatched types": INVENTORY, "E0382 use after move": REPORT, "E0425 typo": WORDS}


def rendered_error(source: str) -> str:
    """The first compile error exactly as rustc renders it for this file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "main.rs"
        path.write_text(source)
        result = subprocess.run(
            ["rustc", "--edition", "2021", "--color", "never", "-o", str(Path(tmp) / "out"), "main.rs"],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
    # The pipeline asks about one error at a time: keep the first.
    blocks = [block for block in result.stderr.split("\n\n") if block.startswith("error[")]
    return blocks[0].strip() if blocks else ""


def messages_for(source: str) -> list[dict[str, str]]:
    error = rendered_error(source)
    if not error:
        raise SystemExit("benchmark case compiled cleanly; it must contain one error")
    user = (
        f"Compile error:\n{error}\n\n### Region 1 (src/main.rs, lines 1-{source.count(chr(10))})\n```rust\n{source}```"
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def measure(runtime: ModelRuntime, messages: list[dict[str, str]], lookup: bool, max_new: int) -> Generation:
    return runtime.generate(messages, max_new_tokens=max_new, prompt_lookup=lookup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default=None, help="model id or folder (default: the embedded model)")
    args = parser.parse_args()

    settings = Settings(device=args.device)
    if args.model:
        settings.model = args.model
    started = time.perf_counter()
    runtime = load_runtime(settings, progress=lambda message, _f: print(f"  {message}", file=sys.stderr))
    print(f"model {runtime.model_name} on {runtime.device}, loaded in {time.perf_counter() - started:.1f}s")

    rates: dict[bool, list[float]] = {False: [], True: []}
    for name, source in CASES.items():
        messages = messages_for(source)
        prompt_tokens = runtime.token_count(runtime.render_prompt(messages))
        measure(runtime, messages, True, 8)  # warm-up: first call pays for allocations
        per_mode: dict[bool, list[Generation]] = {False: [], True: []}
        for _ in range(args.reps):
            for lookup in (False, True):  # interleaved, so drift in machine load hits both alike
                per_mode[lookup].append(measure(runtime, messages, lookup, args.max_new_tokens))
        print(f"\n{name}: prompt {prompt_tokens} tokens")
        for lookup in (False, True):
            runs = per_mode[lookup]
            tps = [g.new_tokens / g.seconds for g in runs]
            rates[lookup].extend(tps)
            label = "prompt lookup" if lookup else "plain greedy "
            print(
                f"  {label}: {statistics.median(tps):6.1f} tok/s (min {min(tps):.1f}, max {max(tps):.1f}),"
                f" {runs[0].new_tokens} tokens, median {statistics.median(g.seconds for g in runs):.1f}s"
            )
        same = per_mode[False][0].text == per_mode[True][0].text
        speedup = statistics.median(g.seconds for g in per_mode[False]) / statistics.median(
            g.seconds for g in per_mode[True]
        )
        print(f"  speed-up {speedup:.2f}x; identical answers: {same}")
        if args.reps and name == next(iter(CASES)):
            print("  answer:\n    " + per_mode[True][0].text.replace("\n", "\n    "))

    overall = statistics.median(rates[True]) / statistics.median(rates[False])
    print(
        f"\noverall median tok/s: plain {statistics.median(rates[False]):.1f},"
        f" prompt lookup {statistics.median(rates[True]):.1f} -> {overall:.2f}x"
    )


if __name__ == "__main__":
    main()
