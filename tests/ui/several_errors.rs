// Every mistake in one declaration is reported in one build.
backprop::network! { struct Net < 4 => rleu 0 => elu(x) 3 => softmax 1 > }

fn main() {}
