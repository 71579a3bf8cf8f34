backprop::network! { struct Net < 4 => relu 4.5 => 1 > }

fn main() {}
