backprop::network! { struct Net < 4 => relu 5 => softmax 1 > }

fn main() {}
