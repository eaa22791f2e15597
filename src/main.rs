//! The `patholab` command: parses arguments and hands over to the library.

use clap::{Parser, Subcommand};
use patholab_core::{cluster, nets};
use patholab_script as script;
use patholab_script::{kernel, repl};
use std::path::PathBuf;
use std::process::ExitCode;

/// Deep transfer learning on pathology images: a prompt and a script runner.
#[derive(Parser)]
#[command(name = "patholab", disable_version_flag = true)]
struct Cli {
    /// Evaluate one expression and print its value.
    #[arg(short = 'e', value_name = "EXPR")]
    expr: Option<String>,
    /// Print patholab's and libtorch's versions and whether CUDA is usable.
    #[arg(long)]
    version: bool,
    /// No progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Change an engine limit: string, array, map, depth or calls (e.g. --limit array=100000000).
    #[arg(long = "limit", global = true, value_name = "NAME=N")]
    limit: Vec<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a .rhai script.
    Run {
        file: PathBuf,
        /// Bind a variable: name=value (value parsed as a Rhai literal, else a string).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Compute only shard i of n of every feature extraction (i/n).
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
    },
    /// Run the quickstart example on the built-in data.
    Demo,
    /// Print the script reference (markdown) generated from the declarations: docs/reference.md.
    Docs,
    /// The Jupyter kernel: `kernel install` writes its kernelspec; Jupyter starts it with
    /// `kernel --connection-file F`.
    #[command(args_conflicts_with_subcommands = true)]
    Kernel {
        /// The connection file Jupyter wrote (ports, key).
        #[arg(long, value_name = "F")]
        connection_file: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<KernelAction>,
    },
    /// Weight files: list, import, verify.
    Weights {
        #[command(subcommand)]
        action: WeightsAction,
    },
    /// Run a script on a SLURM cluster: sharded extraction as a job array, then the results.
    Slurm {
        #[command(subcommand)]
        action: SlurmAction,
    },
}

#[derive(Subcommand)]
enum SlurmAction {
    /// Submit SCRIPT as a job array (task i runs it with --shard i/N on a shared PATHOLAB_CACHE)
    /// and a final job that runs it whole once every task succeeded.
    Submit {
        script: PathBuf,
        /// Array tasks (shards).
        #[arg(long, default_value_t = 4)]
        array: usize,
        #[arg(long)]
        partition: Option<String>,
        /// Time limit of each task (SLURM's format, e.g. 02:00:00).
        #[arg(long)]
        time: Option<String>,
        /// GPUs for each task.
        #[arg(long)]
        gpus: Option<u32>,
        /// CPU cores for each task.
        #[arg(long)]
        cpus: Option<u32>,
        /// Memory for each task (e.g. 16G).
        #[arg(long)]
        mem: Option<String>,
        /// Bind a variable in every task: name=value.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Where the scripts and logs go (default runs/slurm/<script>-<time>).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print the scripts; submit nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Each task's state and what the job's feature cache holds.
    Status { job: String },
}

#[derive(Subcommand)]
enum KernelAction {
    /// Write the kernelspec (kernel.json, logos) so Jupyter lists "patholab".
    Install {
        /// Into the user's Jupyter folder (the default).
        #[arg(long, conflicts_with = "prefix")]
        user: bool,
        /// Into DIR/share/jupyter/kernels (a virtual environment, a conda prefix).
        #[arg(long, value_name = "DIR")]
        prefix: Option<PathBuf>,
        /// The kernel's name.
        #[arg(long, default_value = "patholab")]
        name: String,
    },
}

#[derive(Subcommand)]
enum WeightsAction {
    /// Known networks and the weights present locally.
    List,
    /// Convert any supported weight file to safetensors in the weights folder.
    Import {
        file: PathBuf,
        #[arg(long = "as", value_name = "NETWORK")]
        name: String,
    },
    /// Load every local weight file into its network (strict) and report.
    Verify,
    /// Download a network's weights (progress, resume, checksum, strict load check).
    Fetch {
        name: String,
        /// Expected sha256 of the file (overrides the registry's).
        #[arg(long)]
        sha256: Option<String>,
    },
}

fn main() -> ExitCode {
    patholab_core::memory::keep_freed_memory();
    let cli = Cli::parse();
    // Before anything touches libtorch (where there is no NVIDIA driver this does nothing).
    let _ = patholab_core::load_cuda();
    // Tables print whole at the prompt unless the user chose otherwise.
    for (k, v) in [
        ("POLARS_FMT_MAX_COLS", "24"),
        ("POLARS_FMT_STR_LEN", "48"),
        ("POLARS_TABLE_WIDTH", "200"),
    ] {
        if std::env::var_os(k).is_none() {
            std::env::set_var(k, v);
        }
    }
    patholab_core::progress::set_quiet(cli.quiet);
    for l in &cli.limit {
        if let Err(e) = script::limits::set(l) {
            return fail(e);
        }
    }
    let result = if cli.version {
        println!("patholab {}", env!("CARGO_PKG_VERSION"));
        println!("libtorch {}", patholab_core::LIBTORCH_VERSION);
        println!(
            "CUDA {}",
            match patholab_core::cuda_devices() {
                Ok(n) => format!("available ({n} device(s))"),
                Err(why) => format!("not available ({why})"),
            }
        );
        Ok(())
    } else if let Some(expr) = cli.expr {
        script::run::eval_expression(&expr).map(|s| {
            if !s.is_empty() {
                println!("{s}")
            }
        })
    } else {
        match cli.command {
            None => repl::run().map_err(|e| e.to_string()),
            Some(Command::Run { file, set, shard }) => {
                let shard = match shard.as_deref().map(parse_shard).transpose() {
                    Ok(s) => s,
                    Err(e) => return fail(e),
                };
                script::run::run_file(&file, &set, script::Settings { shard })
            }
            Some(Command::Demo) => script::run::run_file(
                &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart.rhai"),
                &[],
                script::Settings::default(),
            ),
            Some(Command::Docs) => {
                print!("{}", script::help::reference());
                Ok(())
            }
            Some(Command::Weights { action }) => weights(action),
            Some(Command::Slurm { action }) => slurm(action),
            Some(Command::Kernel {
                connection_file,
                action,
            }) => match (connection_file, action) {
                (_, Some(KernelAction::Install { prefix, name, .. })) => {
                    kernel::spec::install(prefix.as_deref(), &name)
                        .map(|d| println!("installed kernelspec {name} in {}", d.display()))
                        .map_err(|e| e.to_string())
                }
                (Some(f), None) => kernel::run(&f).map_err(|e| e.to_string()),
                (None, None) => Err(
                    "patholab kernel: give --connection-file F (Jupyter does) or install".into(),
                ),
            },
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn fail(msg: String) -> ExitCode {
    eprintln!("{msg}");
    ExitCode::FAILURE
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("--shard {s:?}: expected i/n"))?;
    let (i, n) = (
        i.parse().map_err(|_| format!("--shard {s:?}: bad i"))?,
        n.parse().map_err(|_| format!("--shard {s:?}: bad n"))?,
    );
    if n == 0 || i >= n {
        return Err(format!("--shard {s:?}: need 0 ≤ i < n"));
    }
    Ok((i, n))
}

fn slurm(action: SlurmAction) -> Result<(), String> {
    let out = match action {
        SlurmAction::Submit {
            script,
            array,
            partition,
            time,
            gpus,
            cpus,
            mem,
            set,
            dir,
            dry_run,
        } => cluster::submit(&cluster::Submit {
            script,
            tasks: array,
            partition,
            time,
            gpus,
            cpus,
            mem,
            sets: set,
            dir,
            dry_run,
        }),
        SlurmAction::Status { job } => cluster::status(&job),
    };
    out.map(|s| println!("{s}")).map_err(|e| e.to_string())
}

fn weights(action: WeightsAction) -> Result<(), String> {
    match action {
        WeightsAction::List => {
            println!("{}", nets::catalogue::weights_list());
            Ok(())
        }
        WeightsAction::Import { file, name } => nets::catalogue::import_weights(&file, &name)
            .map(|p| println!("imported {}", p.display()))
            .map_err(|e| e.to_string()),
        WeightsAction::Verify => nets::catalogue::verify_weights()
            .map(|s| println!("{s}"))
            .map_err(|e| e.to_string()),
        WeightsAction::Fetch { name, sha256 } => match nets::registry::find(&name) {
            None => Err(nets::catalogue::fetch_instructions(&name)),
            Some(spec) => nets::fetch::fetch(spec, sha256.as_deref(), false)
                .map(|p| println!("saved {}", p.display()))
                .map_err(|e| e.to_string()),
        },
    }
}
