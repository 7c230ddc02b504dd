pub struct Item {
    pub name: String,
    pub weight: u32,
}

pub struct Inventory {
    pub items: Vec<Item>,
}

impl Inventory {
    pub fn new() -> Self {
        Inventory { items: Vec::new() }
    }

    pub fn add(&mut self, item: Item) {
        self.items.push(item);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn summary(&self) -> String {
        format!("{} items", self.items.len())
    }
}
