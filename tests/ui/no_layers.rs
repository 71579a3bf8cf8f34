backprop::network! { struct Net < 4 > }

fn main() {}
