use backprop::prelude::*;

network! { struct Net < 4 => relu 5 => 1 > }

fn main() {
    let net = Net::<f32>::zeros();
    let mut ws = net.workspace();
    let mut grad = Net::zeros();
    // Two targets for a one-output network.
    let y = SVector::<f32, 2>::zeros();
    net.backward(&SVector::<f32, 4>::zeros(), &y, &Mse, &mut ws, &mut grad);
}
