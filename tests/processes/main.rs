//! The integration tests that drive interactive or long-lived processes, one test binary: the
//! command line, the prompt in a pseudo-terminal, the Jupyter kernel under Python's client, the
//! hostile scripts under time limits, and `patholab weights` against a local HTTP server. They
//! mostly wait, so nextest runs them beside the compute-bound ones (`.config/nextest.toml`).

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod fetch;
mod hostile;
mod kernel;
mod prompt;
mod weights_cli;
