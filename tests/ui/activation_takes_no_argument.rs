backprop::network! { struct Net < 4 => relu(0.1) 5 => 1 > }

fn main() {}
