//! The crate's layers import one way, down (ARCHITECTURE.md): a module may name
//! modules of lower layers only, never one of its own layer or above it.
//!
//! This reads the sources and lists every `crate::module` a module names outside
//! comments and test code; any edge against the order below (or one of the few
//! downward edges that skip a layer on purpose) fails the test, with the file and
//! line. Adding a module means giving it a layer here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each top-level module of `src/` and its layer, bottom (0) to top.
const LAYERS: &[(&str, u32)] = &[
    ("sys", 0),
    ("cmd", 1),
    ("dns", 1),
    ("link", 1),
    ("pcap", 1),
    ("engine", 2),
    ("sim", 3),
    ("pump", 3),
    ("kernel", 3),
    ("stack", 4),
    ("socket", 5),
    ("bsd", 6),
    // The async face (feature `tokio`): the blocking types in tokio's AsyncFd,
    // connected through `bsd`'s non-blocking connect.
    ("tokio", 7),
];

/// Edges that go down but skip the layer that should answer: the socket faces ask
/// the stack, which alone chooses the backend.
const FORBIDDEN: &[(&str, &str)] = &[("socket", "kernel"), ("bsd", "kernel")];

fn layer(module: &str) -> Option<u32> {
    LAYERS
        .iter()
        .find(|(name, _)| *name == module)
        .map(|&(_, l)| l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None`: the crate root).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let first = file.strip_prefix(src).ok()?.components().next()?;
    let name = first.as_os_str().to_str()?.trim_end_matches(".rs");
    (name != "lib").then(|| name.to_owned())
}

/// The modules `line` names as `crate::name` or inside `use crate::{...}`.
fn named_modules(line: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let names: &str = if let Some(group) = rest.strip_prefix('{') {
            group.split('}').next().unwrap_or("")
        } else {
            rest
        };
        for part in names.split(',') {
            let name: String = part
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
            if !rest.starts_with('{') {
                break;
            }
        }
    }
    out
}

#[test]
fn imports_go_one_way_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        if file.file_stem().is_some_and(|s| s == "tests")
            || file.components().any(|c| c.as_os_str() == "tests")
        {
            continue;
        }
        let own = layer(&module).unwrap_or_else(|| {
            panic!(
                "{}: module `{module}` has no layer in LAYERS",
                file.display()
            )
        });
        let text = std::fs::read_to_string(file).unwrap();
        let mut previous = "";
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            // Unit tests may use the whole crate.
            if previous.trim_start() == "#[cfg(test)]" && code.starts_with("mod ") {
                break;
            }
            previous = line;
            if code.starts_with("//") {
                continue;
            }
            let code = code.split("//").next().unwrap_or("");
            for named in named_modules(code) {
                if named == module || named == "self" || named == "super" {
                    continue;
                }
                // Items re-exported at the crate root (`crate::Stack`) are not modules.
                let Some(theirs) = layer(&named) else {
                    continue;
                };
                if theirs >= own || FORBIDDEN.contains(&(module.as_str(), named.as_str())) {
                    wrong.push(format!(
                        "{}:{}: `{module}` (layer {own}) names `{named}` (layer {theirs}): {}",
                        file.display(),
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_parser_of_this_test_sees_grouped_imports() {
    let names = named_modules("use crate::{engine::Engine, link::Link};");
    assert_eq!(
        names,
        BTreeSet::from(["engine".to_owned(), "link".to_owned()])
    );
    let names = named_modules("let x = crate::sys::pair(libc::SOCK_STREAM);");
    assert_eq!(names, BTreeSet::from(["sys".to_owned()]));
}
