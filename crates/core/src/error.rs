//! The library's one error type. Every variant says which file, tensor or value is at fault.

use std::path::PathBuf;

/// Errors of every patholab layer.
#[derive(thiserror::Error, Debug)]
pub enum Error {
    /// A problem with a file: it names the file.
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    /// Weights that do not fit the network: every missing, unexpected and mis-shaped tensor.
    #[error("{}: weights do not fit {network}:\n{details}", path.display())]
    WeightsMismatch {
        path: PathBuf,
        network: String,
        details: String,
    },
    /// A split or fold that would put one slide on both sides.
    #[error("slide leakage: {0}")]
    SlideLeakage(String),
    /// The user interrupted the computation (Ctrl-C).
    #[error("interrupted")]
    Cancelled,
    /// An argument or option the function cannot use.
    #[error("{0}")]
    Invalid(String),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("table: {0}")]
    Table(#[from] polars::prelude::PolarsError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Result alias used throughout the library.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error about `path`.
    pub fn file(path: impl Into<PathBuf>, msg: impl std::fmt::Display) -> Self {
        Error::File {
            path: path.into(),
            msg: msg.to_string(),
        }
    }
}

/// Adds a file path to errors of lower layers.
pub trait Context<T> {
    /// Attaches `path` to the error.
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T, E: std::fmt::Display> Context<T> for std::result::Result<T, E> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::file(path, e))
    }
}
