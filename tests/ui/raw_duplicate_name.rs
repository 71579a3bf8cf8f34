// `r#fc1` is the field `fc1`, the name generated for layer 1.
backprop::network! { struct Net < 4 => 5 => r#fc1: 1 > }

fn main() {}
