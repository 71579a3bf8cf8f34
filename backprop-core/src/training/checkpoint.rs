//! Checkpoints: the network, the optimizer's state, the schedule's state, the epoch and the
//! shuffling seed in one safetensors file, written atomically, so that training resumes bit for
//! bit.
//!
//! Tensors hold the state: the network's parameters under `model.` (`model.fc1.weight`), each
//! optimizer buffer under `optimizer.<torch's state key>.` (`optimizer.exp_avg.fc1.weight`), in
//! the network's scalar type (written and read by [`io::to_bytes`] and [`io::from_bytes`]).
//! The metadata holds the rest as text: the architecture (every parameter's name and shape, and
//! the scalar), the optimizer's name, counters, learning rate and momentum, the schedule's kind,
//! hyper-parameters and position, the next epoch and the shuffling seed; floats as their bit patterns, so nothing is
//! rounded. [`load`] checks the architecture, the optimizer and the schedule before reading any
//! tensor and refuses a mismatch with an error that names both sides; on any error nothing is
//! changed.
//!
//! Training for `6` epochs equals training `3`, [`save`], a fresh process that builds the same
//! network, optimizer and schedule, [`load`]s and trains to `6` with
//! [`Fit::start_epoch`](crate::train::Fit::start_epoch) set to the checkpoint's epoch: the
//! sample order of an epoch depends only on the seed and the epoch's index (the loop replays the
//! earlier epochs' shuffles), so the seed and the epoch are the shuffling's whole state.
//!
//! ```text
//! let history = train_with(&mut net, &mut adam, &Mse, &x, &y,
//!     TrainOptions::new(3, 7).batch::<32>(), Fit::new().schedule(&mut schedule, Every::Epoch), |_| Continue(()))?;
//! checkpoint::save("run.ckpt", &net, &adam, Some(&schedule), 3, Some(7))?;
//! // ... in another process, with the same declarations:
//! let resume = checkpoint::load("run.ckpt", &mut net, &mut adam, Some(&mut schedule))?;
//! train_with(&mut net, &mut adam, &Mse, &x, &y, TrainOptions::new(6, 7).batch::<32>(),
//!     Fit::new().schedule(&mut schedule, Every::Epoch).start_epoch(resume.epoch), |_| Continue(()))?;
//! ```
//! (run as `tests/suite/checkpoint.rs`, whose second half is a fresh process)

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::string::{String, ToString};
use std::vec::Vec;

use crate::heap::boxed;
use crate::io::{self, safetensors, LoadOptions, Rename, SaveOptions, WeightsError};
use crate::network::Network;
use crate::optim::{OptimizerState, Schedule};

/// The format's marker and version, in the metadata.
const FORMAT: &str = "backprop.checkpoint";
/// The version written.
const VERSION: &str = "1";

/// What a checkpoint says about the run besides the state it restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    /// The next epoch to train (the epochs completed).
    pub epoch: usize,
    /// The shuffling seed the run used (`None`: in order).
    pub shuffle_seed: Option<u64>,
}

/// Why a checkpoint could not be written or read.
#[derive(Debug)]
pub enum CheckpointError {
    /// Reading or writing the file failed.
    Io(std::io::Error),
    /// A tensor could not be encoded or decoded (names the tensor when it can).
    Weights(WeightsError),
    /// The file is not a checkpoint, or a metadata entry is missing or malformed.
    Format {
        /// What is wrong.
        problem: String,
    },
    /// The checkpoint is of another network, optimizer or schedule.
    Mismatch {
        /// `architecture`, `optimizer`, `optimizer state` or `schedule`.
        what: &'static str,
        /// The checkpoint's.
        found: String,
        /// Ours.
        expected: String,
    },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::Io(error) => write!(f, "checkpoint file: {error}"),
            CheckpointError::Weights(error) => write!(f, "checkpoint tensors: {error}"),
            CheckpointError::Format { problem } => write!(f, "not a valid checkpoint: {problem}"),
            CheckpointError::Mismatch {
                what,
                found,
                expected,
            } => write!(
                f,
                "the checkpoint's {what} is `{found}`, but this run's is `{expected}`; nothing was loaded"
            ),
        }
    }
}

impl std::error::Error for CheckpointError {}

impl From<WeightsError> for CheckpointError {
    fn from(error: WeightsError) -> Self {
        CheckpointError::Weights(error)
    }
}

/// The architecture as text: the scalar, then every parameter's name and shape.
fn architecture<N: Network>() -> String {
    let net = boxed(N::zeros);
    let mut text = String::from(core::any::type_name::<N::Scalar>());
    for param in net.params() {
        text.push_str(&std::format!(
            " {}[{}x{}]",
            param.name,
            param.rows,
            param.cols
        ));
    }
    text
}

/// A float as its hexadecimal bit pattern.
fn hex(value: f64) -> String {
    std::format!("{:016x}", value.to_bits())
}

/// A float from its hexadecimal bit pattern.
fn unhex(text: &str) -> Option<f64> {
    u64::from_str_radix(text, 16).ok().map(f64::from_bits)
}

/// The file's name of every tensor of the buffer `name` (`optimizer.exp_avg.`).
fn prefix(buffer: &str) -> String {
    std::format!("optimizer.{buffer}.")
}

/// Saves `net`, `optimizer` (its buffers, counters and learning rate), `schedule`'s position,
/// the next `epoch` and the `shuffle_seed` to `path`, atomically (a temporary file beside it,
/// flushed, then renamed over it).
///
/// ```
/// use backprop::checkpoint;
/// use backprop::prelude::*;
///
/// backprop::network! { struct Net < 1 => 1 > }
///
/// let name = format!("backprop-doc-checkpoint-save-{}.ckpt", std::process::id());
/// let path = std::env::temp_dir().join(name);
/// let mut grad = Net::<f64>::zeros();
/// grad.fc1.weight[(0, 0)] = 1.0; // the same gradient at every step
/// let mut net = Net::zeros();
/// let mut sgd = Sgd::new(0.5).momentum(0.5);
/// sgd.step(&mut net, &grad); // buffer 1, w = −0.5
/// checkpoint::save(&path, &net, &sgd, None, 1, Some(7))?;
///
/// // Later, in a fresh process: the same declarations, restored from the file.
/// let (mut net, mut sgd) = (Net::<f64>::zeros(), Sgd::new(0.5).momentum(0.5));
/// let resume = checkpoint::load(&path, &mut net, &mut sgd, None);
/// std::fs::remove_file(&path)?;
/// let resume = resume?;
/// assert_eq!((resume.epoch, resume.shuffle_seed), (1, Some(7)));
/// // The momentum buffer is back: b = 0.5·1 + 1 = 1.5, w = −0.5 − 0.5·1.5, as uninterrupted.
/// sgd.step(&mut net, &grad);
/// assert_eq!(net.fc1.weight[(0, 0)], -1.25);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn save<N: Network, O: OptimizerState<N>>(
    path: impl AsRef<Path>,
    net: &N,
    optimizer: &O,
    schedule: Option<&Schedule>,
    epoch: usize,
    shuffle_seed: Option<u64>,
) -> Result<(), CheckpointError> {
    let mut metadata: HashMap<String, String> = HashMap::new();
    metadata.insert(FORMAT.into(), VERSION.into());
    metadata.insert("architecture".into(), architecture::<N>());
    metadata.insert("optimizer".into(), optimizer.name().into());
    let counters: Vec<String> = optimizer
        .counters()
        .iter()
        .map(|(name, value)| std::format!("{name}={value}"))
        .collect();
    metadata.insert("optimizer.counters".into(), counters.join(","));
    metadata.insert("optimizer.lr".into(), hex(optimizer.learning_rate()));
    if let Some(momentum) = optimizer.momentum() {
        // OneCycleLR may have cycled it.
        metadata.insert("optimizer.momentum".into(), hex(momentum));
    }
    let buffers = optimizer.buffers();
    let names: Vec<&str> = buffers.iter().map(|(name, _)| *name).collect();
    metadata.insert("optimizer.buffers".into(), names.join(","));
    match schedule {
        Some(schedule) => {
            let mut state = Vec::new();
            schedule.state(&mut state);
            metadata.insert("schedule".into(), schedule.describe());
            let state: Vec<String> = state.into_iter().map(hex).collect();
            metadata.insert("schedule.state".into(), state.join(","));
        }
        None => {
            metadata.insert("schedule".into(), "none".into());
        }
    }
    metadata.insert("epoch".into(), epoch.to_string());
    metadata.insert(
        "shuffle_seed".into(),
        shuffle_seed.map_or("none".into(), |s| s.to_string()),
    );

    // Each network-shaped group through the weight writer, then one file of all their tensors.
    let mut groups = std::vec![io::to_bytes(
        net,
        &SaveOptions::new().rename(Rename::Prefix("model."))
    )?];
    for (name, buffer) in &buffers {
        let prefix = prefix(name);
        groups.push(io::to_bytes(
            *buffer,
            &SaveOptions::new().rename(Rename::Prefix(&prefix)),
        )?);
    }
    let mut tensors = Vec::new();
    for bytes in &groups {
        let parsed = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|source| WeightsError::Encode { source })?;
        tensors.extend(parsed.tensors());
    }
    let bytes = safetensors::serialize(tensors, Some(metadata))
        .map_err(|source| WeightsError::Encode { source })?;
    write_atomically(path.as_ref(), &bytes).map_err(CheckpointError::Io)
}

/// Writes `bytes` to a temporary file beside `path`, flushes it and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(std::format!(".tmp{}", std::process::id()));
    let temporary = std::path::PathBuf::from(temporary);
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// A metadata entry, or a format error naming it.
fn entry<'m>(metadata: &'m HashMap<String, String>, key: &str) -> Result<&'m str, CheckpointError> {
    metadata
        .get(key)
        .map(String::as_str)
        .ok_or_else(|| CheckpointError::Format {
            problem: std::format!("the metadata has no `{key}`"),
        })
}

/// Load options reading the tensors under `prefix`, ignoring the others.
fn options(prefix: &str) -> LoadOptions<'_> {
    LoadOptions::new()
        .rename(Rename::Prefix(prefix))
        .allow_extra(true)
}

/// A format error.
fn malformed(key: &str) -> CheckpointError {
    CheckpointError::Format {
        problem: std::format!("the metadata's `{key}` is malformed"),
    }
}

/// Loads a checkpoint [`save`] wrote into `net`, `optimizer` and `schedule` (which must be the
/// same kinds: same architecture, optimizer, buffers and schedule with the same
/// hyper-parameters, else [`CheckpointError::Mismatch`]); returns the epoch to resume from and
/// the seed. The optimizer's state, step counts, learning rate and momentum (or beta1, which
/// OneCycleLR may cycle) come from the file; its other hyper-parameters stay as the caller built
/// them. On error nothing is
/// changed.
///
/// ```
/// use backprop::checkpoint::{self, CheckpointError};
/// use backprop::prelude::*;
///
/// backprop::network! { struct Net < 1 => 1 > }
///
/// let name = format!("backprop-doc-checkpoint-load-{}.ckpt", std::process::id());
/// let path = std::env::temp_dir().join(name);
/// let net = Net::<f64>::init(3);
/// checkpoint::save(&path, &net, &Sgd::new(0.1), None, 4, None)?;
/// // A run with another optimizer is refused, and keeps its own values.
/// let mut other = Net::<f64>::zeros();
/// let mut adam = Adam::new(0.1);
/// let refused = checkpoint::load(&path, &mut other, &mut adam, None);
/// let mut same = Net::<f64>::zeros();
/// let resumed = checkpoint::load(&path, &mut same, &mut Sgd::new(0.1), None);
/// std::fs::remove_file(&path)?;
/// assert!(matches!(refused, Err(CheckpointError::Mismatch { what: "optimizer", .. })));
/// assert_eq!(other, Net::zeros());
/// assert_eq!(resumed?.epoch, 4);
/// assert_eq!(same, net);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load<N: Network, O: OptimizerState<N>>(
    path: impl AsRef<Path>,
    net: &mut N,
    optimizer: &mut O,
    schedule: Option<&mut Schedule>,
) -> Result<Resume, CheckpointError> {
    let bytes = std::fs::read(path.as_ref()).map_err(CheckpointError::Io)?;
    let (_, header) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|_| CheckpointError::Format {
            problem: "the file is not safetensors".into(),
        })?;
    let metadata = header.metadata().clone().unwrap_or_default();
    if metadata.get(FORMAT).map(String::as_str) != Some(VERSION) {
        return Err(CheckpointError::Format {
            problem: std::format!("the metadata has no `{FORMAT}: {VERSION}` (not a checkpoint)"),
        });
    }
    let mismatch = |what, found: &str, expected: String| {
        if found == expected {
            Ok(())
        } else {
            Err(CheckpointError::Mismatch {
                what,
                found: found.into(),
                expected,
            })
        }
    };
    mismatch(
        "architecture",
        entry(&metadata, "architecture")?,
        architecture::<N>(),
    )?;
    mismatch(
        "optimizer",
        entry(&metadata, "optimizer")?,
        optimizer.name().into(),
    )?;
    let expected_schedule = schedule.as_ref().map_or("none".into(), |s| s.describe());
    mismatch("schedule", entry(&metadata, "schedule")?, expected_schedule)?;

    // Everything into copies first; committed only when all of it has been read.
    let mut new_net = boxed(|| net.clone());
    io::from_bytes(&mut *new_net, &bytes, &options("model."))?;
    let mut new_optimizer = optimizer.clone();
    let listed = entry(&metadata, "optimizer.buffers")?;
    let listed: Vec<&str> = listed.split(',').filter(|s| !s.is_empty()).collect();
    {
        let mut buffers = new_optimizer.buffers_mut();
        let ours: Vec<&str> = buffers.iter().map(|(name, _)| *name).collect();
        // A buffer the checkpoint lacks is one its optimizer had not made yet: zero, as made.
        if let Some(extra) = listed.iter().find(|name| !ours.contains(name)) {
            return Err(CheckpointError::Mismatch {
                what: "optimizer state",
                found: listed.join(","),
                expected: std::format!("{} (no `{extra}`)", ours.join(",")),
            });
        }
        for (name, buffer) in buffers.iter_mut() {
            if listed.contains(name) {
                let prefix = prefix(name);
                io::from_bytes(&mut **buffer, &bytes, &options(&prefix))?;
            } else {
                for param in buffer.params_mut() {
                    param.values.fill(crate::scalar::constant(0.0));
                }
            }
        }
    }
    for counter in entry(&metadata, "optimizer.counters")?
        .split(',')
        .filter(|s| !s.is_empty())
    {
        let (name, value) = counter
            .split_once('=')
            .ok_or_else(|| malformed("optimizer.counters"))?;
        let value: u64 = value.parse().map_err(|_| malformed("optimizer.counters"))?;
        if !new_optimizer.set_counter(name, value) {
            return Err(malformed("optimizer.counters"));
        }
    }
    let lr = unhex(entry(&metadata, "optimizer.lr")?).ok_or_else(|| malformed("optimizer.lr"))?;
    new_optimizer.set_learning_rate(lr);
    if let Some(momentum) = metadata.get("optimizer.momentum") {
        let momentum = unhex(momentum).ok_or_else(|| malformed("optimizer.momentum"))?;
        new_optimizer.set_momentum(momentum);
    }
    let new_schedule = match schedule.as_deref() {
        Some(schedule) => {
            let state: Option<Vec<f64>> = entry(&metadata, "schedule.state")?
                .split(',')
                .map(unhex)
                .collect();
            let state = state.ok_or_else(|| malformed("schedule.state"))?;
            let mut new = schedule.clone();
            if new.set_state(&state) != Some(&[][..]) {
                return Err(malformed("schedule.state"));
            }
            Some(new)
        }
        None => None,
    };
    let epoch: usize = entry(&metadata, "epoch")?
        .parse()
        .map_err(|_| malformed("epoch"))?;
    let shuffle_seed = match entry(&metadata, "shuffle_seed")? {
        "none" => None,
        seed => Some(seed.parse().map_err(|_| malformed("shuffle_seed"))?),
    };

    for (to, from) in net.params_mut().zip(new_net.params()) {
        to.values.copy_from_slice(from.values);
    }
    *optimizer = new_optimizer;
    if let (Some(schedule), Some(new)) = (schedule, new_schedule) {
        *schedule = new;
    }
    Ok(Resume {
        epoch,
        shuffle_seed,
    })
}
