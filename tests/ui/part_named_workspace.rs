// A part `workspace` would make the type `NetWorkspace`, the name of the chain's workspace.
backprop::network! { struct Net { encoder: < 4 => 2 >, workspace: < 2 => 4 > } }

fn main() {}
