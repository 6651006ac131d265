//! Many sockets, short connections, small messages: our C library next to the
//! reference libvdestack (kernel namespaces), measured in the same run (issue 11).
//!
//! `cargo bench --bench small`. One C program (`benches/small/small.c`), compiled
//! once against Debian's `/usr/include/vdestack.h`, runs every workload twice: on
//! Debian's `libvdestack.so.0`, and on ours (same soname) found first through
//! `LD_LIBRARY_PATH`. It prints which library its `vde_addstack` came from, and the
//! run fails if that is not the one intended. Each run is a process of its own in a
//! user + network namespace of its own (`unshare -Urn`; the reference makes its
//! nested namespaces inside), with two stacks (or as many as the workload needs) on a
//! fresh `vde_switch`. The floors, what the switch itself costs below any stack, come
//! from `benches/small/floor.c`, linked with libvdeplug alone: a raw frame's round
//! trip, `vde_open` + `vde_close`; and, from the round trip, the frames a workload
//! waits for one after the other at half a round trip each (three per
//! connect/accept cycle: SYN, SYN-ACK, ACK; one per byte sent).
//!
//! The full run takes about five minutes on a 2-core machine, most of it the
//! reference creating 1,000 stacks (~80 s). `VDESTACK_BENCH_QUICK=1` scales down to
//! 100 stacks for that row and 1,000 connections for the held ones, and finishes in
//! about a minute; the table says which scale it ran at.
//!
//! `VDESTACK_BENCH_OURS=/path/to/libvdestack.so` measures that build of our library
//! instead of building this tree's (a before/after comparison: build the old tree's
//! C library, then point this at it).
//!
//! Needs a C compiler, Debian's `libvdestack-dev`, `libvdeplug-dev`, `vde2` and user
//! namespaces; without user namespaces only our figures are printed.

mod common;

use common::Switch;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Builds our C library and returns a directory holding it as `libvdestack.so.0`.
///
/// The one place that knows how our drop-in is built: the cdylib artifact cargo
/// reports is copied under the reference's soname, since that is the name the
/// dynamic linker looks for.
fn our_library_dir() -> Result<PathBuf, String> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("small-ours");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if let Some(library) = std::env::var_os("VDESTACK_BENCH_OURS") {
        std::fs::copy(&library, dir.join("libvdestack.so.0"))
            .map_err(|e| format!("copying {}: {e}", Path::new(&library).display()))?;
        return Ok(dir);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let build = Command::new(cargo)
        .args(["build", "--release", "--lib", "-p", "vdestack-capi"])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo: {e}"))?;
    if !build.status.success() {
        return Err("cargo build of our C library failed".into());
    }
    let messages = String::from_utf8_lossy(&build.stdout);
    let library = messages
        .lines()
        .filter(|m| m.contains("\"compiler-artifact\"") && m.contains("\"cdylib\""))
        .flat_map(|m| m.split('"'))
        .rfind(|field| field.ends_with(".so"))
        .ok_or("cargo reported no cdylib")?;
    std::fs::copy(library, dir.join("libvdestack.so.0"))
        .map_err(|e| format!("copying {library}: {e}"))?;
    Ok(dir)
}

/// How many of everything a run makes.
struct Scale {
    quick: bool,
    /// Connections held open between two stacks.
    held: usize,
    /// connect/accept/close cycles timed.
    cycles: usize,
    /// Round trips timed (and frame ping-pongs for the floor).
    round_trips: usize,
    /// Stacks made for their memory and idle CPU.
    idle_stacks: usize,
    /// Seconds their CPU is measured over.
    idle_seconds: usize,
    /// Stacks made for the creation time.
    many_stacks: usize,
    /// Stacks added, configured and deleted (and ports opened and closed).
    lifecycles: usize,
}

impl Scale {
    fn from_env() -> Scale {
        let quick = std::env::var("VDESTACK_BENCH_QUICK").is_ok_and(|v| v == "1");
        Scale {
            quick,
            held: if quick { 1_000 } else { 4_000 },
            cycles: if quick { 500 } else { 2_000 },
            round_trips: if quick { 2_000 } else { 10_000 },
            idle_stacks: 100,
            idle_seconds: if quick { 3 } else { 5 },
            many_stacks: if quick { 100 } else { 1_000 },
            lifecycles: if quick { 50 } else { 200 },
        }
    }
}

/// Which `libvdestack.so.0` a run of the C program gets.
#[derive(Clone, Copy)]
enum Library {
    /// Ours, from [`Bench::ours`].
    Ours,
    /// Debian's, where the dynamic linker finds it by default.
    Reference,
}

/// The longest one run of a program may take (the reference's 1,000 stacks take
/// about 80 s).
const RUN_TIMEOUT_SECONDS: &str = "900";

/// The `key=value` figures a program printed.
type Figures = HashMap<String, f64>;

/// The two programs, and how to run them.
struct Bench {
    small: PathBuf,
    floor: PathBuf,
    /// The directory holding our library as `libvdestack.so.0`.
    ours: PathBuf,
    /// `unshare` arguments giving each run a network namespace of its own.
    unshare: &'static [&'static str],
}

/// Compiles one C file of benches/small into the bench's temporary directory.
fn compile(name: &str, libraries: &[&str]) -> Result<PathBuf, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("benches/small/{name}.c"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("small-{name}"));
    let cc = Command::new("cc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&out)
        .arg(&src)
        .args(libraries)
        .output()
        .map_err(|e| format!("cc: {e}"))?;
    if !cc.status.success() {
        return Err(format!(
            "cannot build {name}.c (are libvdestack-dev and libvdeplug-dev installed?): {}",
            String::from_utf8_lossy(&cc.stderr).trim()
        ));
    }
    Ok(out)
}

/// Whether `unshare` with these arguments works here.
fn can_unshare(args: &[&str]) -> bool {
    Command::new("unshare")
        .args(args)
        .arg("true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Bench {
    /// Runs `program workload SWITCH args...` on a fresh switch with room for
    /// `ports`, in a namespace of its own, on `library` (for the floor, `None`: it
    /// links no libvdestack).
    fn run(
        &self,
        program: &Path,
        library: Option<Library>,
        workload: &str,
        args: &[usize],
        ports: usize,
    ) -> Result<Figures, String> {
        let sw = Switch::start(&format!("small-{workload}"), ports);
        let mut command = Command::new("unshare");
        command
            .args(self.unshare)
            // A run that hangs (the reference can) fails instead of stopping the bench.
            .args(["timeout", "--kill-after=5", RUN_TIMEOUT_SECONDS])
            .arg(program)
            .arg(workload)
            .arg(sw.path())
            .args(args.iter().map(|a| a.to_string()))
            // Nothing inherited may choose the library, or our backend, for it.
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("LD_PRELOAD")
            .env_remove("VDESTACK_BACKEND");
        if let Some(Library::Ours) = library {
            command.env("LD_LIBRARY_PATH", &self.ours);
        }
        let run = command
            .output()
            .map_err(|e| format!("{}: {e}", program.display()))?;
        let stdout = String::from_utf8_lossy(&run.stdout);
        if !run.status.success() {
            return Err(format!(
                "{workload} failed ({}): {}",
                run.status,
                String::from_utf8_lossy(&run.stderr).trim()
            ));
        }
        let mut figures = Figures::new();
        let mut loaded = None;
        for line in stdout.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if key == "library" {
                loaded = Some(PathBuf::from(value));
            } else if let Ok(v) = value.parse() {
                figures.insert(key.to_string(), v);
            }
        }
        if let Some(library) = library {
            check_library(library, &self.ours, loaded.as_deref())?;
        }
        Ok(figures)
    }
}

/// Fails unless the library a run loaded is the one meant (ours is the copy in
/// `ours`): a wrong path would silently give Debian's.
fn check_library(meant: Library, ours: &Path, loaded: Option<&Path>) -> Result<(), String> {
    let loaded = loaded.ok_or("the program did not say which library it loaded")?;
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let loaded_ours = real(loaded) == real(&ours.join("libvdestack.so.0"));
    match meant {
        Library::Ours if !loaded_ours => Err(format!(
            "meant to run on ours from {}, loaded {}",
            ours.display(),
            loaded.display()
        )),
        Library::Reference if loaded_ours => Err(format!(
            "meant to run on Debian's libvdestack, loaded ours: {}",
            loaded.display()
        )),
        _ => Ok(()),
    }
}

/// Which way a figure is better.
#[derive(Clone, Copy, PartialEq)]
enum Better {
    Higher,
    Lower,
}

/// One line of the table.
struct Row {
    figure: String,
    unit: &'static str,
    decimals: usize,
    better: Better,
    ours: Option<f64>,
    reference: Option<f64>,
    floor: Option<f64>,
}

/// `n` with a comma between each group of three digits, as the table has it.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

impl Row {
    /// The floor, and ours as a multiple of it (the targets are set that way).
    fn floor_cell(&self) -> String {
        match (self.ours, self.floor) {
            (Some(ours), Some(floor)) if floor > 0.0 => {
                format!("{} (ours {:.2}x)", self.value(self.floor), ours / floor)
            }
            _ => self.value(self.floor),
        }
    }

    fn value(&self, v: Option<f64>) -> String {
        match v {
            Some(v) if self.decimals == 0 && v >= 0.0 => {
                format!("{} {}", grouped(v.round() as usize), self.unit)
            }
            Some(v) => format!("{v:.*} {}", self.decimals, self.unit),
            None => "-".into(),
        }
    }

    /// How many times better ours is than the reference.
    fn ratio(&self) -> String {
        match (self.ours, self.reference) {
            (Some(o), Some(r)) if o > 0.0 && r > 0.0 => {
                let ratio = if self.better == Better::Higher {
                    o / r
                } else {
                    r / o
                };
                format!("{ratio:.2}x")
            }
            _ => "-".into(),
        }
    }
}

/// The figures of one workload on each library; a failure leaves a note and no figures.
struct Pair {
    ours: Option<Figures>,
    reference: Option<Figures>,
}

impl Pair {
    /// The row for `key` from both sides.
    fn row(
        &self,
        figure: String,
        key: &str,
        unit: &'static str,
        decimals: usize,
        better: Better,
    ) -> Row {
        let get = |side: &Option<Figures>| side.as_ref().and_then(|f| f.get(key).copied());
        Row {
            figure,
            unit,
            decimals,
            better,
            ours: get(&self.ours),
            reference: get(&self.reference),
            floor: None,
        }
    }

    /// Rows for a memory figure printed as `{what}_user_kb` and `{what}_kernel_kb`:
    /// each part, and their sum.
    fn memory_rows(&self, figure: &str, what: &str) -> Vec<Row> {
        let user = self.row(
            format!("{figure}: process"),
            &format!("{what}_user_kb"),
            "kB",
            1,
            Better::Lower,
        );
        let kernel = self.row(
            format!("{figure}: kernel"),
            &format!("{what}_kernel_kb"),
            "kB",
            1,
            Better::Lower,
        );
        let sum = |a: Option<f64>, b: Option<f64>| Some(a? + b?);
        let total = Row {
            figure: format!("{figure}: total"),
            ours: sum(user.ours, kernel.ours),
            reference: sum(user.reference, kernel.reference),
            ..self.row(String::new(), "", "kB", 1, Better::Lower)
        };
        vec![user, kernel, total]
    }
}

fn main() {
    let started = Instant::now();
    let scale = Scale::from_env();
    let mut notes = Vec::new();

    let (small, floor) = match (
        compile("small", &["-lvdestack", "-lpthread", "-ldl"]),
        compile("floor", &["-lvdeplug", "-lpthread"]),
    ) {
        (Ok(small), Ok(floor)) => (small, floor),
        (Err(e), _) | (_, Err(e)) => {
            println!("small: not measured: {e}");
            std::process::exit(1);
        }
    };
    let ours_dir = match our_library_dir() {
        Ok(dir) => dir,
        Err(e) => {
            println!("small: not measured: {e}");
            std::process::exit(1);
        }
    };
    let with_reference = can_unshare(&["-Urn"]);
    let unshare: &'static [&'static str] = if with_reference {
        &["-Urn"]
    } else if can_unshare(&["-n"]) {
        notes.push(
            "reference not measured: no user namespaces here (`unshare -Urn` fails), \
             which the reference needs; ours ran in `unshare -n`"
                .to_string(),
        );
        &["-n"]
    } else {
        println!(
            "small: not measured: neither `unshare -Urn` nor `unshare -n` works here, \
             and no run of ours happens outside a network namespace of its own"
        );
        std::process::exit(1);
    };
    let bench = Bench {
        small,
        floor,
        ours: ours_dir,
        unshare,
    };

    // One workload on ours, then on the reference, one after the other so that both
    // see the same machine.
    let pair = |notes: &mut Vec<String>, workload: &str, args: &[usize], ports: usize| {
        eprintln!("small: {workload} {args:?}");
        let mut side = |library: Library, name: &str| {
            bench
                .run(&bench.small, Some(library), workload, args, ports)
                .map_err(|e| notes.push(format!("{name}, {e}")))
                .ok()
        };
        let ours = side(Library::Ours, "ours");
        let reference = if with_reference {
            side(Library::Reference, "reference")
        } else {
            None
        };
        Pair { ours, reference }
    };
    let floor = |notes: &mut Vec<String>, workload: &str, n: usize| {
        eprintln!("small: floor {workload} {n}");
        bench
            .run(&bench.floor, None, workload, &[n], n + 8)
            .map_err(|e| notes.push(format!("floor, {e}")))
            .ok()
    };

    let cycles = pair(&mut notes, "cycles", &[scale.cycles], 2);
    let held = pair(&mut notes, "held", &[scale.held, scale.cycles], 2);
    let rtt = pair(&mut notes, "rtt", &[scale.round_trips], 2);
    let rtt_floor = floor(&mut notes, "rtt", scale.round_trips);
    let idle = pair(
        &mut notes,
        "stacks",
        &[scale.idle_stacks, scale.idle_seconds],
        scale.idle_stacks + 8,
    );
    // A port the reference's stack held can stay taken a while after vde_delstack;
    // on a switch with too few ports its vde_addstack then waits for ever.
    let lifecycle = pair(
        &mut notes,
        "lifecycle",
        &[scale.lifecycles],
        scale.lifecycles + 8,
    );
    let open_floor = floor(&mut notes, "open", scale.lifecycles);
    let many = pair(
        &mut notes,
        "stacks",
        &[scale.many_stacks, 0],
        scale.many_stacks + 8,
    );

    let held_n = grouped(scale.held);
    let half = grouped(scale.held / 2);
    let other_half = grouped(scale.held - scale.held / 2);
    let floor_of = |f: &Option<Figures>, key: &str| f.as_ref().and_then(|f| f.get(key).copied());
    // What the frames a workload waits for cost, one after the other, at the
    // switch's own pace (half a raw round trip each way): a connect/accept waits
    // for the SYN, the SYN-ACK and the ACK; a byte for its one frame.
    let frame_us = floor_of(&rtt_floor, "rtt_p50_us").map(|rtt| rtt / 2.0);
    let mut rows = vec![
        Row {
            floor: frame_us.map(|us| 1e6 / (3.0 * us)),
            ..cycles.row(
                "socket + connect/accept + close cycles, empty stacks".into(),
                "cycles_per_s",
                "/s",
                0,
                Better::Higher,
            )
        },
        held.row(
            format!("  the same with {held_n} connections held open"),
            "cycles_per_s",
            "/s",
            0,
            Better::Higher,
        ),
        Row {
            floor: floor_of(&rtt_floor, "rtt_p50_us"),
            ..rtt.row(
                "64-byte request/response round trip, TCP_NODELAY: p50".into(),
                "rtt_p50_us",
                "us",
                1,
                Better::Lower,
            )
        },
        Row {
            floor: floor_of(&rtt_floor, "rtt_p99_us"),
            ..rtt.row("  p99".into(), "rtt_p99_us", "us", 1, Better::Lower)
        },
        held.row(
            format!("open {held_n} connections between two stacks, held"),
            "open_s",
            "s",
            2,
            Better::Lower,
        ),
        held.row(
            format!("  the first {half}"),
            "open_first_half_s",
            "s",
            2,
            Better::Lower,
        ),
        held.row(
            format!("  the next {other_half}"),
            "open_second_half_s",
            "s",
            2,
            Better::Lower,
        ),
        Row {
            floor: frame_us.map(|us| us * scale.held as f64 / 1e6),
            ..held.row(
                format!("one byte over each of the {held_n}, one after the other"),
                "byte_each_s",
                "s",
                2,
                Better::Lower,
            )
        },
    ];
    rows.extend(idle.memory_rows(
        &format!("memory per idle configured stack ({})", scale.idle_stacks),
        "stack",
    ));
    rows.extend(held.memory_rows("memory per idle connection, both ends", "conn"));
    rows.push(Row {
        floor: floor_of(&open_floor, "open_close_ms"),
        ..lifecycle.row(
            "add + configure + delete a stack (median)".into(),
            "lifecycle_ms",
            "ms",
            2,
            Better::Lower,
        )
    });
    // Our library keeps libvdeplug's plugin loaded after its first use, so a bare
    // `vde_open` + `vde_close` also pays loading and unloading the plugin, which a
    // stack of ours no longer does: the port alone is the floor that is left.
    rows.push(Row {
        floor: floor_of(&open_floor, "open_close_loaded_ms"),
        ..lifecycle.row(
            "  the same; floor: the port alone, plugin kept loaded".into(),
            "lifecycle_ms",
            "ms",
            2,
            Better::Lower,
        )
    });
    rows.push(idle.row(
        format!(
            "{} idle stacks, CPU over {} s from 1 s after set-up",
            scale.idle_stacks, scale.idle_seconds
        ),
        "idle_cpu_percent",
        "% core",
        3,
        Better::Lower,
    ));
    rows.push(many.row(
        format!(
            "{} stacks created and configured",
            grouped(scale.many_stacks)
        ),
        "stacks_s",
        "s",
        2,
        Better::Lower,
    ));

    print_table(&scale, &bench, &rows);
    for note in &notes {
        println!("note: {note}");
    }
    println!("({:.0} s in all)", started.elapsed().as_secs_f64());
    if notes.iter().any(|n| n.starts_with("ours")) {
        std::process::exit(1);
    }
}

fn print_table(scale: &Scale, bench: &Bench, rows: &[Row]) {
    println!(
        "Many sockets, short connections, small messages{}",
        if scale.quick {
            " (VDESTACK_BENCH_QUICK=1: 100 stacks instead of 1,000, 1,000 connections \
             instead of 4,000, fewer samples)"
        } else {
            ""
        }
    );
    println!(
        "ours: {}/libvdestack.so.0; reference: Debian's libvdestack.so.0; the same C \
         program on each, in `unshare {}`, on a fresh vde_switch per run",
        bench.ours.display(),
        bench.unshare.join(" ")
    );
    println!(
        "ratio: how many times better ours is (reference / ours for times, memory and \
         CPU; ours / reference for rates): above 1, ours is better"
    );
    println!(
        "CPU: the threads of the process and of its helpers (the reference's kernels \
         send IPv6 router solicitations, DAD and MLD reports for some seconds after \
         set-up, which the helpers forward to every other stack; its softirq work is \
         not counted)"
    );
    println!(
        "memory: process = RSS + private memory of forked helpers (the reference's one \
         per stack); kernel = /proc/meminfo SUnreclaim + KernelStack + PageTables + \
         Percpu, machine-wide (noisy)"
    );
    let header = ["figure", "ours", "reference", "ratio", "physical floor"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.figure.clone(),
                r.value(r.ours),
                r.value(r.reference),
                r.ratio(),
                r.floor_cell(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut out = format!("| {:<w$} |", cells[0], w = widths[0]);
        for (cell, w) in cells[1..].iter().zip(&widths[1..]) {
            out += &format!(" {cell:>w$} |");
        }
        println!("{out}");
    };
    line(header);
    println!(
        "|{}|",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    );
    for row in &cells {
        line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
}
