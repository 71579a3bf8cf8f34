backprop::network! { struct Net < 4 => fc2: relu 5 => 1 > }

fn main() {}
