backprop::network! { struct Net < 4 => rleu 5 => 1 > }

fn main() {}
