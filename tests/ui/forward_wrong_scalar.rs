use backprop::prelude::*;

network! { struct Net < 4 => relu 5 => 1 > }

fn main() {
    // An f32 network given f64 data: the width is right, the scalar is not.
    let net = Net::<f32>::zeros();
    let _ = net.forward(&[1.0_f64, 2.0, 3.0, 4.0]);
}
