//! The compute-bound integration tests, one test binary (as ripgrep keeps its in `tests/tests.rs`):
//! the library in process, parity with the Python references, and runs of the binary that keep
//! the cores busy (scripts, features, fine-tuning). Each module is one former `tests/<name>.rs`.
//! `make test` runs them under cargo-nextest, every test in its own process (`.config/nextest.toml`).

#[path = "../common/mod.rs"]
mod common;

mod architecture;
mod code_version;
mod cohorts;
mod data;
mod et_fl;
mod features;
mod finetune;
mod learn_parity;
mod merge;
mod mil;
mod mil_parity;
mod nets_parity;
mod options;
mod pca;
mod precision;
mod reference;
mod scripts;
mod slide_ids;
mod slides;
mod split;
mod stain;
mod tune;
mod vit_parity;
mod weights;
