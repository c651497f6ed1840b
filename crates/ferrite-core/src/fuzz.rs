//! Mutation fuzzing of parsers and loaders: every file format ferrite reads is fed mutants of
//! valid seeds, and each case must end in `Ok` or an error that names the file — never a panic,
//! an abort (an allocation the input asked for before it was checked) or a hang.
//!
//! Layer: core (test support). One harness serves every target (`crates/ferrite/tests/fuzz`);
//! it is a library module so the targets can live next to the public API they exercise.
//!
//! - **Budget.** A target runs its default number of cases (CI), `FERRITE_FUZZ_CASES=N` cases, or
//!   for `FERRITE_FUZZ_SECONDS=S` seconds (`scripts/fuzz.sh`, longer campaigns). The RNG seed is
//!   fixed per target (`FERRITE_FUZZ_SEED` changes it), so a CI failure reproduces exactly.
//! - **Hangs.** Each case runs on a worker thread; one that takes longer than the case timeout
//!   (`FERRITE_FUZZ_CASE_TIMEOUT` seconds, default 20) is a finding and ends the campaign.
//! - **Aborts.** Before each case its input is written to `<findings>/<target>/current`, so when
//!   the process dies (an allocation failure aborts) the input that killed it is on disk; the file
//!   is removed when the campaign ends. [`BoundedAlloc`] as the global allocator turns any single
//!   allocation over [`ALLOC_LIMIT`] into a failed one, so "allocates what the header says" shows
//!   up on tiny inputs instead of only on a machine without enough memory.
//! - **Findings.** Each one is saved to `<findings>/<target>/<kind>-<hash>`; in CI the first one
//!   fails the test, in a timed campaign they are collected and reported at the end. Findings dir:
//!   `FERRITE_FUZZ_FINDINGS`, else `<temp>/ferrite-fuzz`. Fixed findings go to the stored corpus
//!   (`tests/fuzz/corpus/<target>/`), which every run replays before mutating.

use crate::rng::Rng;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The largest single allocation a fuzz case may make (1 GiB): seeds are kilobytes, so anything
/// near this was sized from an unchecked field.
pub const ALLOC_LIMIT: usize = 1 << 30;

static LARGEST_REFUSED: AtomicUsize = AtomicUsize::new(0);

/// The largest allocation [`BoundedAlloc`] has refused so far (0 if none): a fallible path that
/// got an error from it behaved; an infallible one aborted with the input in `current`.
pub fn largest_refused_allocation() -> usize {
    LARGEST_REFUSED.load(Ordering::Relaxed)
}

/// A global allocator for fuzz binaries: the system allocator, except that a request over
/// [`ALLOC_LIMIT`] fails (returns null) and is remembered. Fallible paths (`try_reserve`) turn
/// that into an error; infallible ones abort — the defect the fuzzer looks for.
pub struct BoundedAlloc;

// SAFETY: every call is forwarded unchanged to the system allocator, except that some requests
// fail with null, which `GlobalAlloc` allows.
unsafe impl GlobalAlloc for BoundedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOC_LIMIT {
            LARGEST_REFUSED.fetch_max(layout.size(), Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's guarantees for this call are passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOC_LIMIT {
            LARGEST_REFUSED.fetch_max(layout.size(), Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's guarantees for this call are passed on unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's guarantees for this call are passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > ALLOC_LIMIT {
            LARGEST_REFUSED.fetch_max(new_size, Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's guarantees for this call are passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Numbers and values that break size, range and type checks, spliced into text formats.
const EXTREMES: &[&str] = &[
    "0",
    "-1",
    "1e12",
    "1e400",
    "-1e400",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "-0",
    "4294967296",
    "18446744073709551616",
    "0.5",
    "1e-45",
    "999999999999",
    "268435456",
    "\"x\"",
    "true",
    "[]",
    "{}",
    "null",
    "",
];

/// Mutates `base` by one to four byte-level edits: a random byte, an extreme little-endian u32/u64
/// (the size and count fields of binary headers), a truncation, an insertion, a deletion. Half the
/// positions fall in the first KiB, where headers live.
pub fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let pos = |rng: &mut Rng, len: usize| {
            if rng.below(2) == 0 {
                rng.below(len.min(1024))
            } else {
                rng.below(len)
            }
        };
        match rng.below(5) {
            0 if !b.is_empty() => {
                let i = pos(rng, b.len());
                b[i] = rng.next_u64() as u8;
            }
            1 if !b.is_empty() => {
                let i = pos(rng, b.len());
                let v = [0u64, 1, 0xff, 0xffff, 0xffff_ffff, u64::MAX, 1 << 40, 1 << 28][rng.below(8)].to_le_bytes();
                for (k, x) in v.iter().enumerate().take(b.len() - i) {
                    b[i + k] = *x;
                }
            }
            2 => {
                let n = rng.below(b.len() + 1);
                b.truncate(n);
            }
            3 => {
                let i = pos(rng, b.len() + 1);
                b.insert(i, rng.next_u64() as u8);
            }
            _ if !b.is_empty() => {
                let i = pos(rng, b.len());
                b.remove(i);
            }
            _ => {}
        }
    }
    b
}

/// Mutates a text format (JSON, TOML, CSV): replaces a number or word with an extreme value or
/// with another word of the file, deletes, duplicates or swaps lines, or falls back to
/// [`mutate`]'s byte edits (a quarter of the time).
pub fn mutate_text(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    if rng.below(4) == 0 {
        return mutate(rng, base);
    }
    let text = String::from_utf8_lossy(base);
    let mut out = text.to_string();
    for _ in 0..1 + rng.below(3) {
        out = match rng.below(5) {
            0 | 1 => replace_token(rng, &out, None),
            2 => {
                let words = tokens(&out);
                let other = (!words.is_empty()).then(|| words[rng.below(words.len())]);
                replace_token(rng, &out, other.map(|(s, e)| out[s..e].to_string()))
            }
            3 => edit_lines(rng, &out),
            _ => {
                let mut lines: Vec<&str> = out.lines().collect();
                if lines.len() > 1 {
                    let (i, j) = (rng.below(lines.len()), rng.below(lines.len()));
                    lines.swap(i, j);
                }
                lines.join("\n") + "\n"
            }
        };
    }
    out.into_bytes()
}

/// Byte ranges of the numbers and words of `s` (runs of alphanumerics, `.`, `-`, `+`, `_`).
fn tokens(s: &str) -> Vec<(usize, usize)> {
    let is_tok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_');
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (is_tok(c), start) {
            (true, None) => start = Some(i),
            (false, Some(st)) => {
                out.push((st, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(st) = start {
        out.push((st, s.len()));
    }
    out
}

fn replace_token(rng: &mut Rng, s: &str, with: Option<String>) -> String {
    let toks = tokens(s);
    if toks.is_empty() {
        return s.to_string();
    }
    let (a, b) = toks[rng.below(toks.len())];
    let with = with.unwrap_or_else(|| EXTREMES[rng.below(EXTREMES.len())].to_string());
    format!("{}{}{}", &s[..a], with, &s[b..])
}

fn edit_lines(rng: &mut Rng, s: &str) -> String {
    let mut lines: Vec<&str> = s.lines().collect();
    if lines.is_empty() {
        return s.to_string();
    }
    let i = rng.below(lines.len());
    if rng.below(2) == 0 {
        lines.remove(i);
    } else {
        lines.insert(i, lines[i]);
    }
    lines.join("\n") + "\n"
}

/// How a fuzz target's inputs are mutated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutator {
    /// Byte edits for binary formats ([`mutate`]).
    Binary,
    /// Token and line edits for text formats ([`mutate_text`]).
    Text,
}

/// A fuzz target: a name, valid seed inputs and how to mutate them.
pub struct Target {
    pub name: &'static str,
    pub seeds: Vec<Vec<u8>>,
    pub mutator: Mutator,
    /// Cases per CI run (when neither `FERRITE_FUZZ_CASES` nor `FERRITE_FUZZ_SECONDS` is set).
    pub ci_cases: usize,
}

/// What a campaign did: printed as one line and returned for assertions.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub cases: usize,
    pub accepted: usize,
    pub seconds: f64,
    pub findings: Vec<String>,
}

fn env_f64(key: &str) -> Option<f64> {
    std::env::var(key).ok().and_then(|v| v.parse().ok())
}

/// The directory findings of `target` are saved in.
pub fn findings_dir(target: &str) -> PathBuf {
    std::env::var_os("FERRITE_FUZZ_FINDINGS")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("ferrite-fuzz"))
        .join(target)
}

/// The stored corpus of `target` under `repo` (`tests/fuzz/corpus/<target>/`), sorted by name.
pub fn stored_corpus(repo: &Path, target: &str) -> Vec<Vec<u8>> {
    let dir = repo.join("tests/fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn save_finding(dir: &Path, kind: &str, input: &[u8]) -> PathBuf {
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("{kind}-{hash:016x}"));
    let _ = std::fs::write(&path, input);
    path
}

/// Keeps the panic hook from printing panics that [`crate::error::catch_panic`] turns into errors
/// (a dependency's panic on a bad file, reported as an error naming it); others print as before.
fn quiet_about_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !crate::error::panic_is_being_caught() {
                default(info);
            }
        }));
    });
}

/// Runs `check` on every seed (which must be accepted or refused cleanly, like any case), then on
/// mutants of them, each on a worker thread under the case timeout. `check` returns `Err` with a
/// description when a case breaks a rule other than panicking (e.g. an error that does not name
/// the file). Panics with the findings at the end (at the first one in a CI run).
pub fn run<F>(target: Target, check: F) -> Report
where
    F: Fn(&[u8]) -> std::result::Result<bool, String> + Send + Sync + 'static,
{
    let seconds = env_f64("FERRITE_FUZZ_SECONDS");
    let cases = env_f64("FERRITE_FUZZ_CASES").map_or(target.ci_cases, |c| c as usize);
    let timeout = Duration::from_secs_f64(env_f64("FERRITE_FUZZ_CASE_TIMEOUT").unwrap_or(20.0));
    let seed = env_f64("FERRITE_FUZZ_SEED").map_or(0, |s| s as u64);
    let campaign = seconds.is_some();
    let dir = findings_dir(target.name);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("fuzz {}: cannot create {}: {e}", target.name, dir.display()));
    let current = dir.join("current");

    quiet_about_caught_panics();
    let check = Arc::new(check);
    let (to_worker, inbox) = mpsc::channel::<Vec<u8>>();
    let (to_main, results) = mpsc::channel::<std::result::Result<std::result::Result<bool, String>, String>>();
    let worker_check = Arc::clone(&check);
    std::thread::Builder::new()
        .name(format!("fuzz-{}", target.name))
        .spawn(move || {
            for input in inbox {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker_check(&input)));
                let r = r.map_err(|p| {
                    p.downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "panic".into())
                });
                if to_main.send(r).is_err() {
                    break;
                }
            }
        })
        .expect("spawn the fuzz worker");

    let name_seed = target
        .name
        .bytes()
        .fold(seed, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    let mut rng = Rng::new(name_seed);
    let start = Instant::now();
    let mut report = Report::default();
    let mut hung = false;
    let mut i = 0usize;
    loop {
        let done = match seconds {
            Some(s) => start.elapsed().as_secs_f64() >= s && i >= target.seeds.len(),
            None => i >= target.seeds.len() + cases,
        };
        if done || target.seeds.is_empty() {
            break;
        }
        let input = if i < target.seeds.len() {
            target.seeds[i].clone()
        } else {
            let base = &target.seeds[rng.below(target.seeds.len())];
            match target.mutator {
                Mutator::Binary => mutate(&mut rng, base),
                Mutator::Text => mutate_text(&mut rng, base),
            }
        };
        i += 1;
        let _ = std::fs::write(&current, &input);
        to_worker.send(input.clone()).expect("fuzz worker alive");
        let finding = match results.recv_timeout(timeout) {
            Ok(Ok(Ok(accepted))) => {
                report.accepted += accepted as usize;
                None
            }
            Ok(Ok(Err(rule))) => Some(("broken-rule", rule)),
            Ok(Err(panic)) => Some(("panic", panic)),
            Err(_) => {
                hung = true;
                Some(("hang", format!("case ran longer than {:.0} s", timeout.as_secs_f64())))
            }
        };
        report.cases += 1;
        if let Some((kind, what)) = finding {
            let saved = save_finding(&dir, kind, &input);
            let line = format!(
                "{kind}: {} (input saved to {})",
                what.lines().next().unwrap_or(""),
                saved.display()
            );
            report.findings.push(line);
            if !campaign || hung {
                break;
            }
        }
    }
    drop(to_worker);
    let _ = std::fs::remove_file(&current);
    report.seconds = start.elapsed().as_secs_f64();
    println!(
        "fuzz {}: {} cases in {:.1} s ({:.0}/s), {} accepted, {} findings",
        target.name,
        report.cases,
        report.seconds,
        report.cases as f64 / report.seconds.max(1e-9),
        report.accepted,
        report.findings.len()
    );
    for f in &report.findings {
        println!("fuzz {}: {f}", target.name);
    }
    if !report.findings.is_empty() {
        panic!("fuzz {}: {}", target.name, report.findings.join("\n"));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_differ_and_text_mutants_splice_extremes() {
        let mut rng = Rng::new(1);
        let base = b"a = 1\nb = 2.5\nc = \"x\"\n".to_vec();
        let mut changed = 0;
        let mut spliced = 0;
        for _ in 0..200 {
            let m = mutate_text(&mut rng, &base);
            changed += (m != base) as usize;
            let s = String::from_utf8_lossy(&m);
            spliced += ["1e400", "nan", "-1", "18446744073709551616"]
                .iter()
                .any(|x| s.contains(x)) as usize;
        }
        assert!(changed > 150 && spliced > 10, "changed {changed}, spliced {spliced}");
    }

    #[test]
    fn a_panicking_case_is_a_finding_saved_to_disk() {
        let r = std::panic::catch_unwind(|| {
            let target = Target {
                name: "selftest",
                seeds: vec![b"ok".to_vec()],
                mutator: Mutator::Binary,
                ci_cases: 50,
            };
            run(target, |b| if b == b"ok" { Ok(true) } else { panic!("boom on {b:?}") })
        });
        let msg = r
            .err()
            .and_then(|p| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        assert!(msg.contains("panic: boom") && msg.contains("input saved to"), "{msg}");
        assert!(!findings_dir("selftest").join("current").exists());
    }
}
