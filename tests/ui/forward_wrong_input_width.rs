use backprop::prelude::*;

network! { struct Net < 4 => relu 5 => 1 > }

fn main() {
    let net = Net::<f32>::zeros();
    // Three features for a four-input network.
    let _ = net.forward(&SVector::<f32, 3>::zeros());
}
