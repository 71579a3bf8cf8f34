// `a_b` and `aB` would both make the type `NetAB`; `workspace` would make `NetWorkspace`.
backprop::network! { struct Net { a_b: < 2 => 3 >, aB: < 3 => 4 >, workspace: < 4 => 1 > } }

fn main() {}
