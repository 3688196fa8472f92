//! Imports in the engine run downward: the modules of `crates/pagealloc/src`
//! form no cycle (docs/DESIGN.md, "The tree").
//!
//! Every `.rs` file is a module (`a/mod.rs` is `a`, `a/b.rs` is `a::b`).
//! Each `crate::`, `super::` and `self::` path outside comments and
//! `#[cfg(test)]` code is an edge to the longest module it names; a path
//! through the crate root's re-exports (`crate::Allocator`) is an edge to
//! the module that defines the name. A cycle is reported with its modules.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Module path (`engine::zone`, `""` for the root) → source text.
fn modules(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(root).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                parts.pop();
            }
            out.insert(parts.join("::"), fs::read_to_string(&path).unwrap());
        }
    }
    out
}

/// The code a module's edges come from: no comments, no test module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands `use` trees (`a::{b::C, d}`) into flat paths.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = format!("{prefix}{}", &tree[..open]);
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&head, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&head, &inner[start..], out);
    } else if !tree.is_empty() {
        out.push(format!("{prefix}{tree}"));
    }
}

/// Every path the code names: `use` trees expanded, and inline paths.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let before = rest[..i].chars().last();
        let tail = &rest[i + 4..];
        let end = tail.find(';').unwrap_or(tail.len());
        if before.is_none_or(|c| !c.is_alphanumeric() && c != '_') {
            expand("", &tail[..end], &mut out);
        }
        rest = &tail[end.min(tail.len())..];
    }
    let bytes: Vec<char> = code.chars().collect();
    let text: String = bytes.iter().collect();
    for anchor in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(anchor) {
            let at = from + i;
            let ok = at == 0 || {
                let c = text[..at].chars().last().unwrap();
                !c.is_alphanumeric() && c != '_' && c != ':'
            };
            let end = text[at..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(text.len(), |e| at + e);
            if ok {
                out.push(text[at..end].trim_end_matches(':').to_string());
            }
            from = end.max(at + anchor.len());
        }
    }
    out
}

/// The module a path names, seen from module `from`.
fn resolve(
    from: &str,
    path: &str,
    is_mod_rs: bool,
    mods: &BTreeMap<String, String>,
    root_names: &BTreeMap<String, String>,
) -> Option<String> {
    let mut segs: Vec<&str> = path.split("::").map(str::trim).collect();
    let mut base: Vec<&str> = if from.is_empty() {
        vec![]
    } else {
        from.split("::").collect()
    };
    match segs.first().copied() {
        Some("crate") => {
            base.clear();
            segs.remove(0);
        }
        Some("self") => {
            segs.remove(0);
            if !is_mod_rs {
                base.pop();
            }
        }
        Some("super") => {
            if !is_mod_rs {
                base.pop();
            }
            while segs.first() == Some(&"super") {
                segs.remove(0);
                base.pop();
            }
        }
        _ => return None,
    }
    if base.is_empty() {
        if let Some(owner) = segs.first().and_then(|s| root_names.get(*s)) {
            return Some(owner.clone());
        }
    }
    let mut best = None;
    for n in 0..=segs.len() {
        let mut full: Vec<&str> = base.clone();
        full.extend(&segs[..n]);
        let name = full.join("::");
        if mods.contains_key(&name) {
            best = Some(name);
        }
    }
    best
}

/// A cycle of `edges`, as its modules with the first repeated last.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(n) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let i = stack.iter().position(|s| s == n).unwrap();
                let mut cycle = stack[i..].to_vec();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(n.to_string(), Mark::Open);
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, marks, stack) {
                return Some(c);
            }
        }
        stack.pop();
        marks.insert(n.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    edges
        .keys()
        .find_map(|n| visit(n, edges, &mut marks, &mut Vec::new()))
}

#[test]
fn engine_modules_form_no_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&root);
    assert!(mods.len() > 20, "found only {} modules", mods.len());
    // Names the crate root re-exports, and the module each comes from.
    let mut root_names = BTreeMap::new();
    let mut flat = Vec::new();
    for line in code(&mods[""]).split(';') {
        if let Some(tree) = line.trim().strip_prefix("pub use ") {
            expand("", tree, &mut flat);
        }
    }
    for p in &flat {
        let segs: Vec<&str> = p.split("::").collect();
        let name = segs.last().unwrap().to_string();
        let mut owner = String::new();
        for n in 0..segs.len() {
            let candidate = segs[..n].join("::");
            if mods.contains_key(&candidate) {
                owner = candidate;
            }
        }
        root_names.insert(name, owner);
    }
    // The edges.
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, text) in &mods {
        if name.is_empty() {
            continue; // the root only declares and re-exports
        }
        let is_mod_rs = root.join(name.replace("::", "/")).join("mod.rs").exists();
        for p in paths(&code(text)) {
            if let Some(target) = resolve(name, &p, is_mod_rs, &mods, &root_names) {
                if &target != name && !target.is_empty() {
                    edges.entry(name.clone()).or_default().insert(target);
                }
            }
        }
    }
    // `mod` lines are not edges: a parent importing a child and the child
    // importing the parent is a cycle like any other.
    if let Some(cycle) = find_cycle(&edges) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
    let nr_edges: usize = edges.values().map(BTreeSet::len).sum();
    assert!(nr_edges > 40, "found only {nr_edges} import edges");
}

/// The checker itself finds a cycle when there is one.
#[test]
fn the_checker_sees_a_planted_cycle() {
    let mut mods = BTreeMap::new();
    mods.insert("a".to_string(), String::new());
    mods.insert("b".to_string(), String::new());
    let none = BTreeMap::new();
    let a_to_b = paths(&code("use crate::b::{X, Y};\nfn f() { crate::b::g(); }"));
    assert!(a_to_b
        .iter()
        .all(|p| resolve("a", p, false, &mods, &none).as_deref() == Some("b")));
    let b_to_a = paths(&code("// use crate::b::Z;\nuse super::a::W;"));
    assert!(!b_to_a.is_empty());
    assert!(b_to_a
        .iter()
        .all(|p| resolve("b", p, false, &mods, &none).as_deref() == Some("a")));
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.entry("a".into()).or_default().insert("b".into());
    assert_eq!(find_cycle(&edges), None);
    edges.entry("b".into()).or_default().insert("a".into());
    assert_eq!(
        find_cycle(&edges),
        Some(vec!["a".into(), "b".into(), "a".into()])
    );
}
