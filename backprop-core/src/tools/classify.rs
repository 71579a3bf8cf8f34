//! Helpers for classifiers: the predicted class of an output (`argmax`, as `torch.argmax`), of a
//! sample (`predict`), and the accuracy over a labelled data set.
//!
//! ```
//! use backprop::classify::{accuracy, predict};
//! use backprop::prelude::*;
//!
//! network! { struct Iris < 4 => relu 8 => 3 > }
//!
//! let net = Iris::<f32>::init(0);
//! let x = SVector::<f32, 4>::new(5.1, 3.5, 1.4, 0.2);
//! let class = predict(&net, &x);
//! assert!(class < 3);
//! assert_eq!(accuracy(&net, &[x], &[class]), 1.0);
//! ```

use crate::model::{class_of, Model};
use crate::sample::SampleFor;
use crate::scalar::Scalar;

/// The index of the largest entry, the first one on ties; a NaN counts as the largest, as
/// `torch.argmax` treats it. `None` for an empty slice.
///
/// ```
/// use backprop::classify::argmax;
/// assert_eq!(argmax(&[0.1_f32, 0.7, 0.2]), Some(1));
/// assert_eq!(argmax(&[2.0_f64, 2.0]), Some(0));
/// assert_eq!(argmax(&[1.0_f64, f64::NAN, 3.0]), Some(1));
/// assert_eq!(argmax::<f32>(&[]), None);
/// ```
pub fn argmax<T: Scalar>(values: &[T]) -> Option<usize> {
    let mut best: Option<(usize, T)> = None;
    for (index, &value) in values.iter().enumerate() {
        match best {
            None => best = Some((index, value)),
            Some((_, top)) if is_nan(top) => {}
            Some((_, top)) if is_nan(value) || value > top => best = Some((index, value)),
            Some(_) => {}
        }
    }
    best.map(|(index, _)| index)
}

/// Whether `value` is NaN (the only value unequal to itself).
#[allow(clippy::eq_op)]
fn is_nan<T: Scalar>(value: T) -> bool {
    value != value
}

/// The class `net` predicts for one sample: the argmax of its output (`0` for a network whose
/// output is empty, which the macro never generates).
pub fn predict<N: Model<I, O>, const I: usize, const O: usize>(
    net: &N,
    sample: &impl SampleFor<N, N::Scalar, I>,
) -> usize {
    net.predict(sample)
}

/// The fraction of `inputs` whose predicted class ([`Model::predict`]) is the label at the same
/// position (pairs beyond the shorter slice are ignored; `0.0` when there are none).
///
/// ```
/// use backprop::classify::accuracy;
/// use backprop::prelude::*;
///
/// network! { struct Sign < 1 => 2 > }
/// // Output 0 is −x, output 1 is x: the class is 1 for a positive input.
/// let mut net = Sign::<f32>::zeros();
/// net.fc1.weight[(0, 0)] = -1.0;
/// net.fc1.weight[(1, 0)] = 1.0;
/// assert_eq!(accuracy(&net, &[[2.0], [-3.0], [0.5], [-1.0]], &[1, 0, 1, 1]), 0.75);
/// ```
pub fn accuracy<N, X, const I: usize, const O: usize>(
    net: &N,
    inputs: &[X],
    labels: &[usize],
) -> f64
where
    N: Model<I, O>,
    X: SampleFor<N, N::Scalar, I>,
{
    let count = inputs.len().min(labels.len());
    if count == 0 {
        return 0.0;
    }
    // One workspace for every sample: nothing is allocated per sample, whatever the widths.
    let mut ws = net.workspace::<1>();
    let right = inputs
        .iter()
        .zip(labels)
        .filter(|(sample, &label)| {
            class_of::<N>(net.forward_into(sample.as_vector(), &mut ws).as_slice()) == label
        })
        .count();
    right as f64 / count as f64
}
