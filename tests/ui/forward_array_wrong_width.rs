use backprop::prelude::*;

network! { struct Net < 4 => relu 5 => 1 > }

fn main() {
    let net = Net::<f32>::zeros();
    // Three features, as an array, for a four-input network.
    let _ = net.forward(&[1.0_f32, 2.0, 3.0]);
}
