use backprop::prelude::*;

network! { struct Net < 4 => relu 5 => 1 > }

fn main() {
    let net = Net::<f32>::zeros();
    let mut ws = net.workspace::<8>();
    let mut grad = Net::zeros();
    // Eight samples as eight rows: a batch is one column per sample.
    let x = SMatrix::<f32, 8, 4>::zeros();
    let y = SMatrix::<f32, 1, 8>::zeros();
    net.backward(&x, &y, &Mse, &mut ws, &mut grad);
}
