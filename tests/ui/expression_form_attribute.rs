fn main() {
    let _net = backprop::network!(#[derive(Debug)] < 4 => 1 >);
}
