backprop::network! { struct Net < relu 4 => 1 > }

fn main() {}
