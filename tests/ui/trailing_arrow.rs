backprop::network! { struct Net < 4 => relu 5 => > }

fn main() {}
