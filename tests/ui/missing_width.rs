backprop::network! { struct Net < 4 => relu => 1 > }

fn main() {}
