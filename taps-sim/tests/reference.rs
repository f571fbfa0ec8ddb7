//! `taps-sim/REFERENCE.toml`, the annotated list of every scenario key,
//! stays true: it parses, and it uses every key the parser accepts (the
//! key list comes from the parser's own structs, so a key added there and
//! not documented here fails this test).

use taps_sim::scenario::shape;
use taps_sim::schema::Shape;
use taps_sim::{REFERENCE, Scenario};

/// The key paths `value` uses, written as [`Shape::key_paths`] writes them.
fn used(value: &toml::Value, shape: &Shape, path: &str, out: &mut Vec<String>) {
    match (shape, value) {
        (Shape::Table { fields, .. }, toml::Value::Table(t)) => {
            for (k, v) in t {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                out.push(p.clone());
                if let Some(f) = fields.iter().find(|f| f.key == k) {
                    used(v, &f.shape, &p, out);
                }
            }
        }
        (Shape::List(inner), toml::Value::Array(items)) => {
            for item in items {
                used(item, inner, &format!("{path}[]"), out);
            }
        }
        (Shape::Names(inner), toml::Value::Table(t)) => {
            for v in t.values() {
                used(v, inner, &format!("{path}.*"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_reference_parses() {
    let sc = Scenario::parse(REFERENCE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sc.name, "reference");
}

#[test]
fn the_reference_uses_every_key_the_parser_accepts() {
    let shape = shape().expect("the scenario's shape can be read");
    let value: toml::Value = toml::from_str(REFERENCE).unwrap();
    let mut seen = Vec::new();
    used(&value, shape, "", &mut seen);
    let missing: Vec<String> = shape
        .key_paths()
        .into_iter()
        .filter(|k| !seen.contains(k))
        .collect();
    assert!(
        missing.is_empty(),
        "REFERENCE.toml does not document {missing:?}"
    );
    // The shape is not trivially small: the keys a newcomer meets first.
    for k in [
        "name",
        "client.interfaces[].kind",
        "dns.records.*.https[].port",
        "connect.tls",
    ] {
        assert!(shape.key_paths().iter().any(|p| p == k), "{k}");
    }
}

#[test]
fn every_key_line_of_the_reference_explains_itself() {
    // Each `key = value` line at the start of a line carries a comment: its
    // default and meaning.
    for line in REFERENCE.lines() {
        if line.starts_with(|c: char| c.is_ascii_alphabetic()) {
            assert!(line.contains('#'), "no explanation on: {line}");
        }
    }
}
