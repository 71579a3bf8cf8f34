backprop::network! { struct Net 4 => relu 5 => 1 > }

fn main() {}
