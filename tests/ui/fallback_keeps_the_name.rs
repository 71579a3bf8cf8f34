// One typo is one error: the bare struct and its workspace are still declared, so the uses of
// their names below add none.
backprop::network! { pub struct Net < 4 => rleu 5 => 1 > }

fn train(_net: &mut Net<f64>, _ws: &mut NetWorkspace<f64, 8>) {}

fn main() {}
