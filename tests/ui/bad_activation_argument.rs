backprop::network! { struct Net < 4 => leaky_relu(fast) 5 => 1 > }

fn main() {}
