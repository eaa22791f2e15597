//! The text of the two sbatch scripts `patholab slurm submit` writes: a job array whose task `i`
//! runs the user's script with `--shard i/N`, and a final job that runs it without `--shard` once
//! the array succeeded. They are plain, commented bash that a user can read, edit and submit by
//! hand (`scripts/slurm/` has a template of the same shape).

use std::path::Path;

/// What goes into both scripts.
#[derive(Clone, Debug)]
pub struct Job<'a> {
    /// The patholab binary the tasks run (an absolute path every node can reach).
    pub binary: &'a Path,
    /// The `.rhai` script (absolute).
    pub script: &'a Path,
    /// Where the tasks start (the submitting folder), so relative paths in the script hold.
    pub workdir: &'a Path,
    /// The shared feature cache (absolute, on storage every node sees).
    pub cache: &'a Path,
    /// Where the task logs go.
    pub logs: &'a Path,
    /// `--set name=value` pairs, passed on unchanged.
    pub sets: &'a [String],
    /// Array tasks (shards).
    pub tasks: usize,
    pub partition: Option<&'a str>,
    pub time: Option<&'a str>,
    /// GPUs for each task.
    pub gpus: Option<u32>,
    /// CPU cores for each task (also the threads of libtorch and of decoding).
    pub cpus: Option<u32>,
    pub mem: Option<&'a str>,
}

/// A word for bash: single-quoted unless it is plainly safe.
pub fn quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=+,:@%".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn name(job: &Job) -> String {
    let stem = job
        .script
        .file_stem()
        .map_or("script".into(), |s| s.to_string_lossy().to_string());
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("patholab-{clean}")
}

/// `#SBATCH` lines shared by both jobs.
fn resources(job: &Job) -> String {
    let mut s = String::new();
    if let Some(p) = job.partition {
        s += &format!("#SBATCH --partition={p}\n");
    }
    if let Some(t) = job.time {
        s += &format!("#SBATCH --time={t}\n");
    }
    if let Some(g) = job.gpus {
        s += &format!("#SBATCH --gres=gpu:{g}\n");
    }
    if let Some(c) = job.cpus {
        s += &format!("#SBATCH --cpus-per-task={c}\n");
    }
    if let Some(m) = job.mem {
        s += &format!("#SBATCH --mem={m}\n");
    }
    s
}

/// The environment and the command line of a task, `shard` added to the array's.
fn body(job: &Job, shard: Option<&str>) -> String {
    let mut s = String::from("set -euo pipefail\n");
    s += "# The feature cache all tasks share: it must be on storage every node sees (NFS, Lustre, ...).\n";
    s += &format!(
        "export PATHOLAB_CACHE={}\n",
        quote(&job.cache.to_string_lossy())
    );
    if let Some(c) = job.cpus {
        s += "# As many compute and decoding threads as cores granted.\n";
        s += &format!("export OMP_NUM_THREADS={c} RAYON_NUM_THREADS={c}\n");
    }
    s += &format!("cd {}\n", quote(&job.workdir.to_string_lossy()));
    s += "echo \"patholab task ${SLURM_ARRAY_TASK_ID:-final} of job ${SLURM_JOB_ID:-?} on $(hostname)\"\n";
    let mut cmd = format!(
        "{} run {}",
        quote(&job.binary.to_string_lossy()),
        quote(&job.script.to_string_lossy())
    );
    if let Some(sh) = shard {
        cmd += &format!(" --shard {sh}");
    }
    for kv in job.sets {
        cmd += &format!(" \\\n  --set {}", quote(kv));
    }
    format!("{s}{cmd}\n")
}

/// The job array: task `i` computes shard `i` of `tasks` into the shared cache.
pub fn array_script(job: &Job) -> String {
    let n = job.tasks;
    format!(
        "#!/bin/bash
# Feature extraction for {script}, one task per shard: task i runs the script with --shard i/{n}
# and writes the features of its images into the shared cache. Written by `patholab slurm submit`.
# Processes on one cache claim chunks of images, so a task that died can be run again alone
# (sbatch --array=<i> {this}) and computes only what is still missing.
#SBATCH --job-name={name}
#SBATCH --array=0-{last}
#SBATCH --output={logs}/shard-%a.out
{resources}
{body}",
        script = job.script.display(),
        this = job
            .logs
            .parent()
            .unwrap_or(job.logs)
            .join("array.sbatch")
            .display(),
        name = name(job),
        last = n.saturating_sub(1),
        logs = job.logs.display(),
        resources = resources(job),
        body = body(job, Some(&format!("\"$SLURM_ARRAY_TASK_ID/{n}\""))),
    )
}

/// The final job: the script without a shard, which reads the filled cache and writes the
/// results. Submitted with `--dependency=afterok:<array job>`.
pub fn final_script(job: &Job) -> String {
    format!(
        "#!/bin/bash
# The results of {script}: run once the array's tasks have filled the cache, so its feature
# extractions read the cache (and compute only what a failed task left missing).
# Submitted as `sbatch --dependency=afterok:<array job id> {this}`.
#SBATCH --job-name={name}-final
#SBATCH --output={logs}/final.out
{resources}
{body}",
        script = job.script.display(),
        this = job
            .logs
            .parent()
            .unwrap_or(job.logs)
            .join("final.sbatch")
            .display(),
        name = name(job),
        logs = job.logs.display(),
        resources = resources(job),
        body = body(job, None),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_shard_the_array_and_pass_the_sets_on() {
        let sets = vec!["data=\"demo\"".to_string(), "quick=true".to_string()];
        let job = Job {
            binary: Path::new("/opt/patholab/bin/patholab"),
            script: Path::new("/home/ada/study/last layer.rhai"),
            workdir: Path::new("/home/ada/study"),
            cache: Path::new("/shared/cache"),
            logs: Path::new("/home/ada/study/runs/slurm/x/logs"),
            sets: &sets,
            tasks: 4,
            partition: Some("gpu"),
            time: Some("02:00:00"),
            gpus: Some(1),
            cpus: Some(8),
            mem: None,
        };
        let a = array_script(&job);
        assert!(a.contains("#SBATCH --array=0-3\n"), "{a}");
        assert!(a.contains("#SBATCH --partition=gpu\n#SBATCH --time=02:00:00\n#SBATCH --gres=gpu:1\n#SBATCH --cpus-per-task=8\n"), "{a}");
        assert!(a.contains("--shard \"$SLURM_ARRAY_TASK_ID/4\""), "{a}");
        assert!(a.contains("'/home/ada/study/last layer.rhai'"), "{a}");
        assert!(
            a.contains("--set 'data=\"demo\"'") && a.contains("--set quick=true"),
            "{a}"
        );
        assert!(a.contains("export PATHOLAB_CACHE=/shared/cache\n"));
        let f = final_script(&job);
        assert!(!f.contains("--shard") && !f.contains("--array"), "{f}");
        assert!(f.contains("#SBATCH --output=/home/ada/study/runs/slurm/x/logs/final.out"));
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
