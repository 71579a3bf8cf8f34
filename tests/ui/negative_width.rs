backprop::network! { struct Net < 4 => relu -3 => 1 > }

fn main() {}
