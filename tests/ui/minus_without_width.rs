backprop::network! { struct Net < 4 => relu - > }

fn main() {}
