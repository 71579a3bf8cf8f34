// `a_b` and `aB` would both make the type `NetAB`.
backprop::network! { struct Net { a_b: < 2 => 3 >, aB: < 3 => 4 > } }

fn main() {}
