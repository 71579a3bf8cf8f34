backprop::network! { struct Net < 4 => hidden: relu 5 => hidden: 1 > }

fn main() {}
