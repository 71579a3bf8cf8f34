backprop::network! { struct Net < 4 => relu 100000 => 1 > }

fn main() {}
