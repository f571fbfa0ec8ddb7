//! The scenario file's shape, read from the parser's own serde structs, and
//! the check of a TOML document against it that reports every misplaced,
//! unknown, missing or mistyped key at once, with its path and line.
//!
//! The shape is not a hand-written list: [`shape_of`] drives a type's
//! `Deserialize` impl with a probing deserializer that records every struct
//! field, list, map and scalar it asks for, and finds the required fields by
//! leaving each one out in turn. So a key added to the parser is known here
//! (and to the reference file's test) without anyone copying it.

use core::cell::{Cell, RefCell};
use core::fmt;
use core::ops::Range;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use toml::de::{DeTable, DeValue};

/// One problem in a scenario file: where, which key, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The 1-based line, when the key could be found in the text.
    pub line: Option<usize>,
    /// The key as a path (`link[0].delay`, `dns.records."example.com".a[1]`);
    /// empty for a TOML syntax error, which has no key yet.
    pub key: String,
    /// What is wrong and what was expected.
    pub problem: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}", self.problem)
    }
}

/// What a key holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A table with these keys (a serde struct; `name` is its type's name,
    /// used only to find it again for [`Shape::Same`], never shown).
    Table {
        /// The struct's name.
        name: &'static str,
        /// Its keys, in declaration order.
        fields: Vec<Field>,
    },
    /// The same table as an enclosing one (`[[expect.connection]]` takes
    /// `[expect]`'s keys).
    Same(&'static str),
    /// A list of values.
    List(Box<Shape>),
    /// A table whose keys are names the user chooses (`[dns.records]`).
    Names(Box<Shape>),
    /// A string.
    Text,
    /// `true` or `false`.
    Bool,
    /// A whole number in this range.
    Whole {
        /// Smallest accepted.
        min: i128,
        /// Largest accepted.
        max: i128,
    },
    /// A number (a whole number is accepted too).
    Number,
}

/// One key of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The key.
    pub key: &'static str,
    /// Whether leaving it out is an error.
    pub required: bool,
    /// What it holds.
    pub shape: Shape,
}

impl Shape {
    /// What a value of this shape is, for "expected ..." messages.
    pub fn describe(&self) -> String {
        match self {
            Shape::Table { .. } | Shape::Same(_) | Shape::Names(_) => "a table".into(),
            Shape::List(inner) => format!("a list of {}", plural(&inner.describe())),
            Shape::Text => "a string".into(),
            Shape::Bool => "true or false".into(),
            Shape::Whole { min, max } if *max > i128::from(i64::MAX) => {
                format!("a whole number from {min} up")
            }
            Shape::Whole { min, max } => format!("a whole number from {min} to {max}"),
            Shape::Number => "a number".into(),
        }
    }

    /// Every key path of the shape, lists written `[]` and chosen names
    /// `*` (`dns.records.*.https[].alpn`): what the reference file must
    /// document.
    pub fn key_paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_paths("", &mut out);
        out
    }

    fn collect_paths(&self, path: &str, out: &mut Vec<String>) {
        match self {
            Shape::Table { fields, .. } => {
                for f in fields {
                    let p = join(path, f.key);
                    out.push(p.clone());
                    f.shape.collect_paths(&p, out);
                }
            }
            Shape::List(inner) => inner.collect_paths(&format!("{path}[]"), out),
            Shape::Names(inner) => inner.collect_paths(&format!("{path}.*"), out),
            _ => {}
        }
    }

    /// The names of the structs the shape was read from: words no message
    /// to a user should contain.
    pub fn table_names(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut pairs = Vec::new();
        list_fields(self, &mut pairs);
        for (name, _) in pairs {
            if !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }

    fn find_table(&self, wanted: &str) -> Option<&Shape> {
        match self {
            Shape::Table { name, fields } => {
                if *name == wanted {
                    return Some(self);
                }
                fields.iter().find_map(|f| f.shape.find_table(wanted))
            }
            Shape::List(inner) | Shape::Names(inner) => inner.find_table(wanted),
            _ => None,
        }
    }
}

fn plural(what: &str) -> String {
    match what {
        "a string" => "strings".into(),
        "a table" => "tables".into(),
        "true or false" => "true or false values".into(),
        "a number" => "numbers".into(),
        other => other.strip_prefix("a ").unwrap_or(other).to_string() + "s",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

// ---------------------------------------------------------------------------
// Reading the shape from a Deserialize impl
// ---------------------------------------------------------------------------

/// The shape of `T`'s TOML form, read from its `Deserialize` impl. `T` must
/// be built from structs, `Option`s, `Vec`s, string-keyed maps, strings,
/// booleans and numbers, as the scenario's raw structs are.
pub fn shape_of<T: DeserializeOwned>() -> Result<Shape, String> {
    let mut shape = probe::<T>(None).map_err(|e| e.to_string())?;
    // A field is required when leaving it out (and only it) makes the
    // struct refuse the input with serde's "missing field".
    let mut tables = Vec::new();
    list_fields(&shape, &mut tables);
    let mut required = Vec::new();
    for (table, key) in tables {
        match probe::<T>(Some((table, key))) {
            Err(ProbeError::Missing(k)) if k == key => required.push((table, key)),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    mark_required(&mut shape, &required);
    Ok(shape)
}

fn list_fields(shape: &Shape, into: &mut Vec<(&'static str, &'static str)>) {
    match shape {
        Shape::Table { name, fields } => {
            for f in fields {
                if !into.contains(&(*name, f.key)) {
                    into.push((name, f.key));
                }
                list_fields(&f.shape, into);
            }
        }
        Shape::List(inner) | Shape::Names(inner) => list_fields(inner, into),
        _ => {}
    }
}

fn mark_required(shape: &mut Shape, required: &[(&'static str, &'static str)]) {
    match shape {
        Shape::Table { name, fields } => {
            for f in fields {
                f.required = required.contains(&(*name, f.key));
                mark_required(&mut f.shape, required);
            }
        }
        Shape::List(inner) | Shape::Names(inner) => mark_required(inner, required),
        _ => {}
    }
}

fn probe<T: DeserializeOwned>(
    skip: Option<(&'static str, &'static str)>,
) -> Result<Shape, ProbeError> {
    let ctx = Ctx {
        stack: RefCell::new(Vec::new()),
        skip,
        hollow: Cell::new(0),
    };
    let out = RefCell::new(None);
    T::deserialize(Probe {
        ctx: &ctx,
        out: &out,
    })?;
    out.into_inner()
        .ok_or_else(|| ProbeError::Other("the type asked for nothing".into()))
}

#[derive(Debug)]
enum ProbeError {
    Missing(&'static str),
    Other(String),
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Missing(k) => write!(f, "missing field {k}"),
            ProbeError::Other(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for ProbeError {}

impl de::Error for ProbeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ProbeError::Other(msg.to_string())
    }
    fn missing_field(field: &'static str) -> Self {
        ProbeError::Missing(field)
    }
}

struct Ctx {
    /// Structs being probed, to stop at a recursive one.
    stack: RefCell<Vec<&'static str>>,
    /// A (struct, field) left out of the input.
    skip: Option<(&'static str, &'static str)>,
    /// Inside a recursive struct: give empty values.
    hollow: Cell<u32>,
}

struct Probe<'a> {
    ctx: &'a Ctx,
    out: &'a RefCell<Option<Shape>>,
}

impl Probe<'_> {
    fn set(&self, shape: Shape) {
        *self.out.borrow_mut() = Some(shape);
    }
}

macro_rules! whole {
    ($($method:ident: $t:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
            self.set(Shape::Whole { min: i128::from(<$t>::MIN), max: i128::from(<$t>::MAX) });
            visitor.visit_u8(0)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeError> {
        Err(ProbeError::Other(
            "a field of no fixed type cannot be described".into(),
        ))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.set(Shape::Bool);
        visitor.visit_bool(false)
    }

    whole!(deserialize_u8: u8, deserialize_u16: u16, deserialize_u32: u32, deserialize_u64: u64,
           deserialize_i8: i8, deserialize_i16: i16, deserialize_i32: i32, deserialize_i64: i64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.set(Shape::Number);
        visitor.visit_f32(0.0)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.set(Shape::Number);
        visitor.visit_f64(0.0)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.set(Shape::Text);
        visitor.visit_str("")
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        // Optional keys are found by leaving them out; the value's shape is
        // the inner type's.
        if self.ctx.hollow.get() > 0 {
            return visitor.visit_none();
        }
        visitor.visit_some(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        let inner = RefCell::new(None);
        let value = visitor.visit_seq(OneElement {
            ctx: self.ctx,
            out: &inner,
            done: self.ctx.hollow.get() > 0,
        })?;
        let inner = inner.into_inner().unwrap_or(Shape::Text);
        self.set(Shape::List(Box::new(inner)));
        Ok(value)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        let inner = RefCell::new(None);
        let value = visitor.visit_map(OneName {
            ctx: self.ctx,
            out: &inner,
            state: u8::from(self.ctx.hollow.get() > 0),
        })?;
        let inner = inner.into_inner().unwrap_or(Shape::Text);
        self.set(Shape::Names(Box::new(inner)));
        Ok(value)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        if self.ctx.stack.borrow().contains(&name) {
            // Its keys are known already. It still needs a value, so its
            // fields are filled "hollow": lists and maps empty, options
            // absent, which ends the recursion.
            self.set(Shape::Same(name));
            let ignored = RefCell::new(Vec::new());
            self.ctx.hollow.set(self.ctx.hollow.get() + 1);
            let value = visitor.visit_map(FieldsRef {
                ctx: self.ctx,
                keys: Vec::from(fields).into_iter(),
                current: "",
                found: &ignored,
            });
            self.ctx.hollow.set(self.ctx.hollow.get() - 1);
            return value;
        }
        self.ctx.stack.borrow_mut().push(name);
        let keys: Vec<&'static str> = fields
            .iter()
            .copied()
            .filter(|f| self.ctx.skip != Some((name, f)))
            .collect();
        let found = RefCell::new(Vec::new());
        let value = visitor.visit_map(FieldsRef {
            ctx: self.ctx,
            keys: keys.into_iter(),
            current: "",
            found: &found,
        });
        self.ctx.stack.borrow_mut().pop();
        let value = value?;
        let fields = found
            .into_inner()
            .into_iter()
            .map(|(key, shape)| Field {
                key,
                required: false,
                shape,
            })
            .collect();
        self.set(Shape::Table { name, fields });
        Ok(value)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct newtype_struct tuple
        tuple_struct enum identifier ignored_any
    }
}

/// A list with one element, probed.
struct OneElement<'a> {
    ctx: &'a Ctx,
    out: &'a RefCell<Option<Shape>>,
    done: bool,
}

impl<'de> de::SeqAccess<'de> for OneElement<'_> {
    type Error = ProbeError;
    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, ProbeError> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        seed.deserialize(Probe {
            ctx: self.ctx,
            out: self.out,
        })
        .map(Some)
    }
}

/// A map with one chosen name, its value probed.
struct OneName<'a> {
    ctx: &'a Ctx,
    out: &'a RefCell<Option<Shape>>,
    state: u8,
}

impl<'de> de::MapAccess<'de> for OneName<'_> {
    type Error = ProbeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ProbeError> {
        if self.state > 0 {
            return Ok(None);
        }
        self.state = 1;
        seed.deserialize("name".into_deserializer()).map(Some)
    }
    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, ProbeError> {
        seed.deserialize(Probe {
            ctx: self.ctx,
            out: self.out,
        })
    }
}

/// A struct's fields (those not skipped), each value probed.
struct FieldsRef<'a> {
    ctx: &'a Ctx,
    keys: std::vec::IntoIter<&'static str>,
    current: &'static str,
    found: &'a RefCell<Vec<(&'static str, Shape)>>,
}

impl<'de> de::MapAccess<'de> for FieldsRef<'_> {
    type Error = ProbeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ProbeError> {
        let Some(key) = self.keys.next() else {
            return Ok(None);
        };
        self.current = key;
        seed.deserialize(key.into_deserializer()).map(Some)
    }
    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, ProbeError> {
        let out = RefCell::new(None);
        let value = seed.deserialize(Probe {
            ctx: self.ctx,
            out: &out,
        })?;
        let shape = out.into_inner().unwrap_or(Shape::Text);
        self.found.borrow_mut().push((self.current, shape));
        Ok(value)
    }
}

// ---------------------------------------------------------------------------
// Checking a document against the shape
// ---------------------------------------------------------------------------

/// The line a syntax error without a position comes from: the first line
/// that, parsed alone, gives the same message. toml reports a dotted key of
/// more than 80 parts as "recursion limit" with no span, and a problem must
/// say where it is.
pub fn line_of_spanless(text: &str, message: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            DeTable::parse_recoverable(line)
                .1
                .iter()
                .any(|e| e.message().trim() == message)
        })
        .map(|i| i + 1)
}

/// The 1-based line of byte offset `at` in `text`.
pub fn line_at(text: &str, at: usize) -> usize {
    let at = at.min(text.len());
    text.as_bytes()[..at]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Checks `text` against `shape` and returns every problem, in file
/// order: TOML syntax errors (alone, since the document's structure past
/// them is unknown), or else unknown keys (with the nearest valid one),
/// missing required keys, and values of the wrong type.
pub fn check(text: &str, shape: &Shape) -> Vec<Problem> {
    let (doc, errors) = DeTable::parse_recoverable(text);
    let mut problems: Vec<Problem> = errors
        .iter()
        .map(|e| {
            let problem = e.message().trim().to_string();
            Problem {
                line: e
                    .span()
                    .map(|s| line_at(text, s.start))
                    .or_else(|| line_of_spanless(text, &problem)),
                key: String::new(),
                problem,
            }
        })
        .collect();
    if let (true, Shape::Table { fields, .. }) = (problems.is_empty(), shape) {
        let mut c = Checker {
            text,
            root: shape,
            problems: &mut problems,
        };
        c.table("", None, doc.get_ref(), fields);
    }
    sort(&mut problems);
    problems
}

/// Sorts problems into file order; those without a line come first, in the
/// order they were found.
pub fn sort(problems: &mut [Problem]) {
    problems.sort_by_key(|p| p.line.unwrap_or(0));
}

struct Checker<'t, 'p> {
    text: &'t str,
    root: &'t Shape,
    problems: &'p mut Vec<Problem>,
}

impl Checker<'_, '_> {
    fn push(&mut self, at: Option<Range<usize>>, key: String, problem: String) {
        self.problems.push(Problem {
            line: at.map(|s| line_at(self.text, s.start)),
            key,
            problem,
        });
    }

    fn table(&mut self, path: &str, at: Option<Range<usize>>, t: &DeTable<'_>, fields: &[Field]) {
        for (k, v) in t.iter() {
            let key = k.get_ref().as_ref();
            let p = join(path, key);
            match fields.iter().find(|f| f.key == key) {
                Some(f) => self.value(&p, k.span(), v, &f.shape),
                None => {
                    let names: Vec<&str> = fields.iter().map(|f| f.key).collect();
                    let problem = match nearest(key, &names) {
                        Some(n) => format!("unknown key; did you mean {n:?}?"),
                        None => format!("unknown key; expected one of: {}", names.join(", ")),
                    };
                    self.push(Some(k.span()), p, problem);
                }
            }
        }
        for f in fields.iter().filter(|f| f.required) {
            if !t.iter().any(|(k, _)| k.get_ref().as_ref() == f.key) {
                let problem = format!("required, but missing ({})", f.shape.describe());
                self.push(at.clone(), join(path, f.key), problem);
            }
        }
    }

    fn value(
        &mut self,
        path: &str,
        at: Range<usize>,
        v: &toml::Spanned<DeValue<'_>>,
        shape: &Shape,
    ) {
        let ok = match (shape, v.get_ref()) {
            (Shape::Table { fields, .. }, DeValue::Table(t)) => {
                self.table(path, Some(at.clone()), t, fields);
                true
            }
            (Shape::Same(name), DeValue::Table(t)) => {
                if let Some(Shape::Table { fields, .. }) = self.root.find_table(name) {
                    self.table(path, Some(at.clone()), t, fields);
                }
                true
            }
            (Shape::Names(inner), DeValue::Table(t)) => {
                for (k, v) in t.iter() {
                    let p = format!("{path}.{:?}", k.get_ref().as_ref());
                    self.value(&p, k.span(), v, inner);
                }
                true
            }
            (Shape::List(inner), DeValue::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    self.value(&format!("{path}[{i}]"), item.span(), item, inner);
                }
                true
            }
            (Shape::Text, DeValue::String(_)) | (Shape::Bool, DeValue::Boolean(_)) => true,
            (Shape::Number, DeValue::Float(_) | DeValue::Integer(_)) => true,
            (Shape::Whole { min, max }, DeValue::Integer(i)) => {
                let digits = i.as_str().replace('_', "");
                i128::from_str_radix(&digits, i.radix()).is_ok_and(|n| (*min..=*max).contains(&n))
            }
            _ => false,
        };
        if !ok {
            let problem = format!(
                "expected {}, found {}",
                shape.describe(),
                found(v.get_ref())
            );
            self.push(Some(at), path.to_string(), problem);
        }
    }
}

/// What a value is, in the words of the "expected" half.
fn found(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!("the string {:?}", s.as_ref()),
        DeValue::Integer(i) => format!("the whole number {}", i.as_str()),
        DeValue::Float(f) => format!("the number {}", f.as_str()),
        DeValue::Boolean(b) => format!("{b}"),
        DeValue::Datetime(_) => "a date".into(),
        DeValue::Array(_) => "a list".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

/// The valid key closest to a mistyped one, if one is close: one edit per
/// three letters, so short keys are not "corrected" into unrelated ones.
fn nearest<'a>(key: &str, names: &[&'a str]) -> Option<&'a str> {
    names
        .iter()
        .map(|n| (edit_distance(key, n), *n))
        .filter(|(d, _)| *d > 0 && *d * 3 <= key.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// Levenshtein distance, counting a swap of neighbours as one edit
/// (`delya` is one edit from `delay`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Fills in the line of every problem that has none, from its key path
/// in `text` (or the nearest enclosing key that exists there).
pub fn locate(text: &str, problems: &mut [Problem]) {
    let Ok(doc) = DeTable::parse(text) else {
        return;
    };
    let root = DeValue::Table(doc.into_inner());
    for p in problems.iter_mut().filter(|p| p.line.is_none()) {
        let mut at: Option<Range<usize>> = None;
        let mut here = &root;
        for seg in segments(&p.key) {
            let next = match (&seg, here) {
                (Seg::Key(k), DeValue::Table(t)) => t
                    .iter()
                    .find(|(key, _)| key.get_ref().as_ref() == k)
                    .map(|(key, v)| (key.span(), v)),
                (Seg::Index(i), DeValue::Array(items)) => items.get(*i).map(|v| (v.span(), v)),
                _ => None,
            };
            let Some((span, v)) = next else { break };
            at = Some(span);
            here = v.get_ref();
        }
        p.line = at.map(|s| line_at(text, s.start));
    }
}

enum Seg {
    Key(String),
    Index(usize),
}

/// `dns.records."example.com".a[0]` → `dns`, `records`, `example.com`,
/// `a`, `0`.
fn segments(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    let mut chars = path.chars().peekable();
    let mut word = String::new();
    while let Some(c) = chars.next() {
        match c {
            '.' | '[' => {
                if !word.is_empty() {
                    out.push(Seg::Key(core::mem::take(&mut word)));
                }
                if c == '[' {
                    let digits: String = chars.by_ref().take_while(|c| *c != ']').collect();
                    if let Ok(i) = digits.parse() {
                        out.push(Seg::Index(i));
                    }
                }
            }
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => word.extend(chars.next()),
                        '"' => break,
                        c => word.push(c),
                    }
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(Seg::Key(word));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[allow(dead_code)] // Only its Deserialize impl is read.
    struct Outer {
        name: String,
        count: Option<u8>,
        #[serde(default)]
        flags: Vec<bool>,
        inner: Inner,
        #[serde(default)]
        named: std::collections::BTreeMap<String, Inner>,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        level: f64,
        #[serde(default)]
        again: Vec<Inner>,
    }

    #[test]
    fn the_shape_is_read_from_the_deserialize_impl() {
        let shape = shape_of::<Outer>().unwrap();
        assert_eq!(
            shape.key_paths(),
            [
                "name",
                "count",
                "flags",
                "inner",
                "inner.level",
                "inner.again",
                "named",
                "named.*.level",
                "named.*.again"
            ]
        );
        let Shape::Table { fields, .. } = &shape else {
            panic!("{shape:?}")
        };
        let required: Vec<&str> = fields
            .iter()
            .filter(|f| f.required)
            .map(|f| f.key)
            .collect();
        assert_eq!(required, ["name", "inner"]);
        assert_eq!(fields[1].shape, Shape::Whole { min: 0, max: 255 });
        assert_eq!(fields[2].shape, Shape::List(Box::new(Shape::Bool)));
    }

    #[test]
    fn problems_come_with_lines_and_suggestions() {
        let shape = shape_of::<Outer>().unwrap();
        let text =
            "nmae = \"x\"\ncount = 256\n[inner]\nlevel = \"high\"\nagain = [{ levle = 1 }]\n";
        let got: Vec<String> = check(text, &shape)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "name: required, but missing (a string)",
                "line 1: nmae: unknown key; did you mean \"name\"?",
                "line 2: count: expected a whole number from 0 to 255, found the whole number 256",
                "line 4: inner.level: expected a number, found the string \"high\"",
                "line 5: inner.again[0].levle: unknown key; did you mean \"level\"?",
                "line 5: inner.again[0].level: required, but missing (a number)",
            ]
        );
    }

    #[test]
    fn neighbours_swapped_are_one_edit() {
        assert_eq!(edit_distance("delya", "delay"), 1);
        assert_eq!(edit_distance("kidn", "kind"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(nearest("nope", &["name", "seed"]), None);
    }
}
