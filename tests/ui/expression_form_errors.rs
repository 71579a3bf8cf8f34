// The expression form reports every error, and its value adds no errors where it is used.
fn main() {
    let net = backprop::network!(< 4 => rleu 5 => 0 >);
    let _ = net.forward(&[1.0, 2.0, 3.0, 4.0]);
}
