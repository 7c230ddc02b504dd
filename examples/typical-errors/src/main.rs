//! A small crate with errors a Rust developer meets every week.
//! `sleepy-coder fix examples/typical-errors` suggests verified fixes for them.

mod inventory;

use inventory::{Inventory, Item};

fn total_weight(items: &[Item]) -> u32 {
    items.iter().map(|item| item.weight).sum()
}

fn main() {
    let mut inventory = Inventory::new();
    let names = vec![String::from("rope"), String::from("lamp")];
    for name in names {
        inventory.add(Item { name, weight: 3 });
    }
    let count: u32 = inventory.len();
    let report = inventory.summary();
    let total = total_weight(&inventory.items);
    println!("{report}: {count} items, {total} kg");
    let first = inventory.items[0];
    println!("first: {}", first.name);
    let counter = 0;
    counter += 1;
    println!("{counter}");
}

fn debug_print(items: &[inventory::Item]) {
    println!("{:?}", items[0]);
}
