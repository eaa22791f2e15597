//! SLURM: `patholab slurm submit` writes an sbatch job array (one task per shard of the
//! feature extractions, all on one shared feature cache) and a final job that runs the script
//! whole once the array succeeded; `patholab slurm status` shows the tasks and the cache.
//! Everything goes through SLURM's own commands (`sbatch`, `squeue`, `sacct`, `scontrol`), so it
//! works wherever those do. The claim files of the cache (`features::claims`) make a rerun of a
//! dead task, or any extra process, compute only what is missing.

pub mod sbatch;

use crate::error::{Context, Error, Result};
use crate::features::cache;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `patholab slurm submit` was asked for.
#[derive(Clone, Debug, Default)]
pub struct Submit {
    pub script: PathBuf,
    /// Array tasks (shards).
    pub tasks: usize,
    pub partition: Option<String>,
    pub time: Option<String>,
    pub gpus: Option<u32>,
    pub cpus: Option<u32>,
    pub mem: Option<String>,
    pub sets: Vec<String>,
    /// Where the scripts and logs go; default `runs/slurm/<script>-<time>/`.
    pub dir: Option<PathBuf>,
    /// Print the scripts, submit nothing.
    pub dry_run: bool,
}

/// Where a submission put things, and its job ids.
#[derive(Clone, Debug)]
pub struct Submitted {
    pub dir: PathBuf,
    pub logs: PathBuf,
    pub array_id: String,
    pub final_id: String,
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).at(p)
}

/// Runs a SLURM command; its stdout, or an error with its stderr.
fn slurm(cmd: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(cmd).args(args).output().map_err(|e| {
        Error::Invalid(format!(
            "cannot run {cmd}: {e} (is SLURM installed and on PATH on this machine?)"
        ))
    })?;
    if !out.status.success() {
        return Err(Error::Invalid(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The job id `sbatch --parsable` prints (`id` or `id;cluster`).
fn job_id(parsable: &str) -> String {
    parsable.split(';').next().unwrap_or("").trim().to_string()
}

/// Writes the two scripts and submits them (or prints them with `dry_run`); returns what to
/// tell the user.
pub fn submit(o: &Submit) -> Result<String> {
    if o.tasks == 0 {
        return Err(Error::Invalid("--array: need at least one task".into()));
    }
    if !o.script.is_file() {
        return Err(Error::file(&o.script, "no such script"));
    }
    let script = absolute(&o.script)?;
    let workdir = std::env::current_dir()?;
    let cache = absolute(&cache::root())?;
    let binary = std::env::current_exe()?;
    let dir = match &o.dir {
        Some(d) => absolute(d)?,
        None => {
            let stem = script
                .file_stem()
                .map_or("script".into(), |s| s.to_string_lossy().to_string());
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            workdir.join("runs/slurm").join(format!("{stem}-{stamp}"))
        }
    };
    let logs = dir.join("logs");
    let job = sbatch::Job {
        binary: &binary,
        script: &script,
        workdir: &workdir,
        cache: &cache,
        logs: &logs,
        sets: &o.sets,
        tasks: o.tasks,
        partition: o.partition.as_deref(),
        time: o.time.as_deref(),
        gpus: o.gpus,
        cpus: o.cpus,
        mem: o.mem.as_deref(),
    };
    let (array, fin) = (sbatch::array_script(&job), sbatch::final_script(&job));
    let (array_file, final_file) = (dir.join("array.sbatch"), dir.join("final.sbatch"));
    if o.dry_run {
        return Ok(format!(
            "# {}\n{array}\n# {}\n{fin}\n# would run: sbatch --parsable {}\n#            sbatch --parsable --dependency=afterok:<array job id> {}\n",
            array_file.display(),
            final_file.display(),
            array_file.display(),
            final_file.display()
        ));
    }
    std::fs::create_dir_all(&logs).at(&logs)?;
    std::fs::create_dir_all(&cache).at(&cache)?;
    std::fs::write(&array_file, array).at(&array_file)?;
    std::fs::write(&final_file, fin).at(&final_file)?;
    let s = submit_files(&array_file, &final_file)?;
    Ok(format!(
        "array job {a}: {n} tasks (shards), logs {logs}/shard-<i>.out\n\
         final job {f}: runs when every task succeeded, log {logs}/final.out\n\
         scripts: {af}, {ff}\n\
         feature cache: {cache}\n\
         progress: patholab slurm status {a}\n\
         a task that died: sbatch --array=<i> {af}, then scancel {f} and sbatch --dependency=afterok:<new id> {ff}",
        a = s.0,
        f = s.1,
        n = o.tasks,
        logs = logs.display(),
        af = array_file.display(),
        ff = final_file.display(),
        cache = cache.display(),
    ))
}

/// Submits an array script, then a final script that waits for its success; their job ids.
pub fn submit_files(array: &Path, fin: &Path) -> Result<(String, String)> {
    let a = job_id(&slurm("sbatch", &["--parsable", &array.to_string_lossy()])?);
    let dep = format!("--dependency=afterok:{a}");
    let f = job_id(&slurm(
        "sbatch",
        &["--parsable", &dep, &fin.to_string_lossy()],
    )?);
    Ok((a, f))
}

/// One line per task of a job (array tasks expanded): id, state, time, exit code or reason.
pub fn tasks(job: &str) -> Result<Vec<String>> {
    let mut lines: Vec<String> = Vec::new();
    // Pending and running tasks.
    if let Ok(q) = slurm("squeue", &["-h", "-r", "-j", job, "-o", "%i %T %M %r"]) {
        lines.extend(q.lines().map(|l| l.to_string()));
    }
    // Finished tasks: accounting when the cluster keeps it, else what slurmctld still remembers.
    match slurm(
        "sacct",
        &[
            "-n",
            "-X",
            "-P",
            "-j",
            job,
            "--format=JobID,State,Elapsed,ExitCode",
        ],
    ) {
        Ok(a) if !a.is_empty() => {
            for l in a.lines() {
                let f: Vec<&str> = l.split('|').collect();
                let id = f[0];
                if !lines.iter().any(|x| x.split(' ').next() == Some(id)) {
                    lines.push(format!(
                        "{id} {} {} exit {}",
                        f[1],
                        f.get(2).unwrap_or(&""),
                        f.get(3).unwrap_or(&"")
                    ));
                }
            }
        }
        _ => {
            if let Ok(s) = slurm("scontrol", &["-o", "show", "job", job]) {
                for l in s.lines() {
                    let field = |k: &str| {
                        l.split(' ')
                            .find_map(|w| w.strip_prefix(&format!("{k}=")))
                            .unwrap_or("")
                            .to_string()
                    };
                    let id = match (field("ArrayJobId"), field("ArrayTaskId")) {
                        (a, t) if !a.is_empty() && !t.is_empty() => format!("{a}_{t}"),
                        _ => field("JobId"),
                    };
                    if !lines
                        .iter()
                        .any(|x| x.split(' ').next() == Some(id.as_str()))
                    {
                        lines.push(format!(
                            "{id} {} {} exit {}",
                            field("JobState"),
                            field("RunTime"),
                            field("ExitCode")
                        ));
                    }
                }
            }
        }
    }
    if lines.is_empty() {
        return Err(Error::Invalid(format!(
            "job {job}: neither squeue, sacct nor scontrol knows it"
        )));
    }
    lines.sort();
    Ok(lines)
}

/// The feature cache a job's script exports (`PATHOLAB_CACHE=` in the batch script).
fn job_cache(job: &str) -> Option<PathBuf> {
    let s = slurm("scontrol", &["-o", "show", "job", job]).ok()?;
    let command = s
        .split(' ')
        .find_map(|w| w.strip_prefix("Command="))?
        .to_string();
    let text = std::fs::read_to_string(command).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("export PATHOLAB_CACHE="))
        .map(|v| PathBuf::from(v.trim_matches('\'')))
}

/// `patholab slurm status JOB`: each task's state, and what the job's feature cache holds.
pub fn status(job: &str) -> Result<String> {
    let mut out = vec![format!("job {job}:")];
    out.extend(tasks(job)?.into_iter().map(|l| format!("  {l}")));
    let root = job_cache(job).unwrap_or_else(cache::root);
    out.push(cache::info_at(&root)?);
    Ok(out.join("\n"))
}
