backprop::network! { struct Net < 4 => leaky_relu(-0.1) 5 => leaky_relu(1.5) 3 => elu(-1) 1 > }

fn main() {}
