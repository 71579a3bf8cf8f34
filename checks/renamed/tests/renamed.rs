//! The networks declared through the renamed facade work.

use backprop_renamed_check::{anonymous, chain::AutoEncoder, loss, Renamed};
use bp::Network;

#[test]
fn networks_through_a_renamed_dependency_work() {
    let net = Renamed::<f32>::init(5);
    assert!(loss(&net, [0.5, -0.5, 1.0], 1.0) > 0.0);
    assert_eq!(Renamed::<f32>::PARAMETERS, 3 * 4 + 4 + 4 + 1);
    let names: Vec<&str> = AutoEncoder::<f32>::zeros()
        .params()
        .map(|p| p.name)
        .collect();
    assert_eq!(names[0], "encoder.fc1.weight");
    let p = anonymous([0.0, 0.0]);
    assert!(p > 0.0 && p < 1.0, "a sigmoid output: {p}");
}
