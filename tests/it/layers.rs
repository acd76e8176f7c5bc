//! The layer map of `docs/architecture.md` held against the code: no file
//! imports a module of a higher floor, and the two store backends never
//! import each other.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The floor of each top-level module, from the map's table.
fn floors() -> HashMap<String, u32> {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md")).unwrap();
    let mut floors = HashMap::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(floor) = cells.get(1).and_then(|c| c.parse::<u32>().ok()) else { continue };
        for module in cells[2].split(',') {
            floors.insert(module.trim().trim_matches('`').to_string(), floor);
        }
    }
    floors
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file names through `crate::…`, outside comments.
fn imported(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for part in line.split("crate::").skip(1) {
            if let Some(group) = part.strip_prefix('{') {
                for item in group.split('}').next().unwrap_or("").split(',') {
                    names.push(item.trim().split("::").next().unwrap_or("").to_string());
                }
            } else {
                names.push(part.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
            }
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

#[test]
fn no_import_runs_up_a_floor_and_the_backends_stay_apart() {
    let floors = floors();
    assert!(floors.len() >= 15, "the map's table was not read: {floors:?}");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if top == "main" || top == "lib" {
            continue;
        }
        let Some(&floor) = floors.get(&top) else {
            wrong.push(format!("{}: module {top} is not on the map", rel.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for name in imported(&text) {
            match floors.get(&name) {
                Some(&to) if to > floor => {
                    wrong.push(format!("{} (floor {floor}) imports {name} (floor {to})", rel.display()))
                }
                None => wrong.push(format!("{} imports {name}, which is not on the map", rel.display())),
                _ => {}
            }
        }
        let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        let other = if rel.starts_with("store/postgres") {
            Some("sqlite")
        } else if rel.starts_with("store/sqlite") {
            Some("postgres")
        } else {
            None
        };
        if let Some(other) = other
            && (code.contains(&format!("store::{other}")) || code.contains(&format!("super::{other}")))
        {
            wrong.push(format!("{} imports the {other} backend", rel.display()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
