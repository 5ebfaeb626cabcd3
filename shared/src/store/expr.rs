//! Condition and update expressions that bind their own names and values.
//!
//! DynamoDB expressions refer to attributes and values through placeholders (`#n0`, `:v0`) that
//! the request must define. Written by hand, every expression relied on its caller to bind
//! the right placeholder under the right name, and two helpers could clash on one. Here a
//! condition or an update is a list of clauses over attribute names (the constants of
//! `items::attr`) and values; placeholders are made when a request is built, one per attribute
//! and per value, so nothing can be left unbound or bound twice. Their `Display` shows the
//! values in place, which is what the plans' unit tests read.

use std::collections::HashMap;
use std::fmt;

use aws_sdk_dynamodb::types::AttributeValue;

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Lt,
    Gt,
    Le,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Lt => "<",
            Op::Gt => ">",
            Op::Le => "<=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Clause {
    Compare(&'static str, Op, AttributeValue),
    Exists(&'static str),
    Missing(&'static str),
    Contains(&'static str, AttributeValue),
    Size(&'static str, Op, AttributeValue),
    /// Any of the clauses holds.
    Any(Vec<Clause>),
    /// Every one of the clauses holds (inside an `Any`).
    All(Vec<Clause>),
}

/// A condition: every clause must hold. The empty condition always holds (and is not sent).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Cond(Vec<Clause>);

impl Cond {
    /// The condition that always holds.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn with(mut self, clause: Clause) -> Self {
        self.0.push(clause);
        self
    }

    /// This condition and `other` both hold.
    pub(crate) fn and(mut self, other: Cond) -> Self {
        self.0.extend(other.0);
        self
    }

    /// `name = value`.
    pub(crate) fn eq(self, name: &'static str, value: AttributeValue) -> Self {
        self.with(Clause::Compare(name, Op::Eq, value))
    }

    /// `name > value`.
    pub(crate) fn gt(self, name: &'static str, value: AttributeValue) -> Self {
        self.with(Clause::Compare(name, Op::Gt, value))
    }

    /// `name < value`.
    pub(crate) fn lt(self, name: &'static str, value: AttributeValue) -> Self {
        self.with(Clause::Compare(name, Op::Lt, value))
    }

    /// `name <= value`.
    pub(crate) fn le(self, name: &'static str, value: AttributeValue) -> Self {
        self.with(Clause::Compare(name, Op::Le, value))
    }

    /// The item has the attribute (for the key attribute: the item exists).
    pub(crate) fn exists(self, name: &'static str) -> Self {
        self.with(Clause::Exists(name))
    }

    /// The item lacks the attribute (for the key attribute: no such item).
    pub(crate) fn missing(self, name: &'static str) -> Self {
        self.with(Clause::Missing(name))
    }

    /// The set (or list, or string) attribute contains `value`.
    pub(crate) fn contains(self, name: &'static str, value: AttributeValue) -> Self {
        self.with(Clause::Contains(name, value))
    }

    /// `size(name) = value`.
    pub(crate) fn size_is(self, name: &'static str, size: usize) -> Self {
        self.with(Clause::Size(name, Op::Eq, super::n(size)))
    }

    /// `size(name) < value`.
    pub(crate) fn size_below(self, name: &'static str, size: u64) -> Self {
        self.with(Clause::Size(name, Op::Lt, super::n(size)))
    }

    /// `name = value`, where an item written before the attribute existed (without it) counts
    /// as holding `zero`: a number attribute that starts at 0.
    pub(crate) fn number_is(self, name: &'static str, value: u64) -> Self {
        let compare = Clause::Compare(name, Op::Eq, super::n(value));
        if value == 0 {
            self.with(Clause::Any(vec![Clause::Missing(name), compare]))
        } else {
            self.with(compare)
        }
    }

    /// Either condition holds (each as a whole).
    pub(crate) fn or(self, other: Cond) -> Self {
        fn whole(c: Cond) -> Clause {
            let mut clauses = c.0;
            if clauses.len() == 1 { clauses.pop().expect("one clause") } else { Clause::All(clauses) }
        }
        Cond(vec![Clause::Any(vec![whole(self), whole(other)])])
    }

    /// True for the condition that always holds.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// An attribute's name in an update: a constant of `items::attr`, or one made per item (a
/// user's totals of one muted thread).
pub(crate) type Name = std::borrow::Cow<'static, str>;

/// An update: what to set, add, remove and delete from sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Change {
    set: Vec<(Name, AttributeValue, bool)>,
    add: Vec<(Name, AttributeValue)>,
    remove: Vec<Name>,
    delete: Vec<(Name, AttributeValue)>,
}

impl Change {
    /// The update that changes nothing.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// `SET name = value`.
    pub(crate) fn set(mut self, name: impl Into<Name>, value: AttributeValue) -> Self {
        self.set.push((name.into(), value, false));
        self
    }

    /// `SET name = if_not_exists(name, value)`.
    pub(crate) fn set_if_missing(mut self, name: impl Into<Name>, value: AttributeValue) -> Self {
        self.set.push((name.into(), value, true));
        self
    }

    /// `ADD name value`: a number added to, or members added to a set.
    pub(crate) fn add(mut self, name: impl Into<Name>, value: AttributeValue) -> Self {
        self.add.push((name.into(), value));
        self
    }

    /// `REMOVE name`.
    pub(crate) fn remove(mut self, name: impl Into<Name>) -> Self {
        self.remove.push(name.into());
        self
    }

    /// `DELETE name members`: members taken out of a set.
    pub(crate) fn delete(mut self, name: impl Into<Name>, members: AttributeValue) -> Self {
        self.delete.push((name.into(), members));
        self
    }

    /// True when nothing is set, added, removed or deleted.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty() && self.delete.is_empty()
    }
}

/// Attribute names by placeholder, as a request binds them.
pub(crate) type Names = HashMap<String, String>;
/// Values by placeholder, as a request binds them.
pub(crate) type Values = HashMap<String, AttributeValue>;

/// Placeholders for one request: one per attribute name and one per value.
#[derive(Debug, Default)]
pub(crate) struct Binder {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Binder {
    fn name(&mut self, name: &str) -> String {
        let next = self.names.len();
        // Keyed by placeholder, so the reverse lookup is a scan: requests name a few attributes.
        if let Some((placeholder, _)) = self.names.iter().find(|(_, n)| n.as_str() == name) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{next}");
        self.names.insert(placeholder.clone(), name.to_owned());
        placeholder
    }

    fn value(&mut self, value: &AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value.clone());
        placeholder
    }

    /// The expression of a condition, its placeholders bound here; `None` for the empty one.
    pub(crate) fn condition(&mut self, cond: &Cond) -> Option<String> {
        if cond.is_empty() {
            return None;
        }
        Some(cond.0.iter().map(|c| self.clause(c)).collect::<Vec<_>>().join(" AND "))
    }

    fn clause(&mut self, clause: &Clause) -> String {
        match clause {
            Clause::Compare(name, op, value) => {
                format!("{} {} {}", self.name(name), op.text(), self.value(value))
            }
            Clause::Exists(name) => format!("attribute_exists({})", self.name(name)),
            Clause::Missing(name) => format!("attribute_not_exists({})", self.name(name)),
            Clause::Contains(name, value) => format!("contains({}, {})", self.name(name), self.value(value)),
            Clause::Size(name, op, value) => {
                format!("size({}) {} {}", self.name(name), op.text(), self.value(value))
            }
            Clause::Any(any) => {
                format!("({})", any.iter().map(|c| self.clause(c)).collect::<Vec<_>>().join(" OR "))
            }
            Clause::All(all) => {
                format!("({})", all.iter().map(|c| self.clause(c)).collect::<Vec<_>>().join(" AND "))
            }
        }
    }

    /// The expression of an update, its placeholders bound here.
    pub(crate) fn update(&mut self, change: &Change) -> String {
        let mut parts = Vec::new();
        if !change.set.is_empty() {
            let sets: Vec<String> = change
                .set
                .iter()
                .map(|(name, value, if_missing)| {
                    let (n, v) = (self.name(name), self.value(value));
                    if *if_missing { format!("{n} = if_not_exists({n}, {v})") } else { format!("{n} = {v}") }
                })
                .collect();
            parts.push(format!("SET {}", sets.join(", ")));
        }
        if !change.add.is_empty() {
            let adds: Vec<String> = change
                .add
                .iter()
                .map(|(name, value)| format!("{} {}", self.name(name), self.value(value)))
                .collect();
            parts.push(format!("ADD {}", adds.join(", ")));
        }
        if !change.remove.is_empty() {
            let removes: Vec<String> = change.remove.iter().map(|name| self.name(name)).collect();
            parts.push(format!("REMOVE {}", removes.join(", ")));
        }
        if !change.delete.is_empty() {
            let deletes: Vec<String> = change
                .delete
                .iter()
                .map(|(name, value)| format!("{} {}", self.name(name), self.value(value)))
                .collect();
            parts.push(format!("DELETE {}", deletes.join(", ")));
        }
        parts.join(" ")
    }

    /// The names and values bound, for the request (`None` when there are none, as the API
    /// refuses empty maps).
    pub(crate) fn into_maps(self) -> (Option<Names>, Option<Values>) {
        let names = (!self.names.is_empty()).then_some(self.names);
        let values = (!self.values.is_empty()).then_some(self.values);
        (names, values)
    }
}

/// A value as the tests read it: numbers bare, strings quoted, sets in braces.
struct Shown<'a>(&'a AttributeValue);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            AttributeValue::N(n) => write!(f, "{n}"),
            AttributeValue::S(s) => write!(f, "{s:?}"),
            AttributeValue::Bool(b) => write!(f, "{b}"),
            AttributeValue::Ss(set) => write!(f, "{{{}}}", set.join(", ")),
            AttributeValue::L(list) => write!(f, "[{} items]", list.len()),
            AttributeValue::M(_) => write!(f, "{{map}}"),
            other => write!(f, "{other:?}"),
        }
    }
}

fn show_clause(clause: &Clause) -> String {
    match clause {
        Clause::Compare(name, op, value) => format!("{name} {} {}", op.text(), Shown(value)),
        Clause::Exists(name) => format!("attribute_exists({name})"),
        Clause::Missing(name) => format!("attribute_not_exists({name})"),
        Clause::Contains(name, value) => format!("contains({name}, {})", Shown(value)),
        Clause::Size(name, op, value) => format!("size({name}) {} {}", op.text(), Shown(value)),
        Clause::Any(any) => format!("({})", any.iter().map(show_clause).collect::<Vec<_>>().join(" OR ")),
        Clause::All(all) => format!("({})", all.iter().map(show_clause).collect::<Vec<_>>().join(" AND ")),
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.iter().map(show_clause).collect::<Vec<_>>().join(" AND "))
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.set.is_empty() {
            let sets: Vec<String> = self
                .set
                .iter()
                .map(|(n, v, if_missing)| {
                    if *if_missing {
                        format!("{n} = if_not_exists({n}, {})", Shown(v))
                    } else {
                        format!("{n} = {}", Shown(v))
                    }
                })
                .collect();
            parts.push(format!("SET {}", sets.join(", ")));
        }
        if !self.add.is_empty() {
            let adds: Vec<String> = self.add.iter().map(|(n, v)| format!("{n} {}", Shown(v))).collect();
            parts.push(format!("ADD {}", adds.join(", ")));
        }
        if !self.remove.is_empty() {
            parts.push(format!("REMOVE {}", self.remove.join(", ")));
        }
        if !self.delete.is_empty() {
            let deletes: Vec<String> = self.delete.iter().map(|(n, v)| format!("{n} {}", Shown(v))).collect();
            parts.push(format!("DELETE {}", deletes.join(", ")));
        }
        write!(f, "{}", parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{n, s};
    use super::*;

    #[test]
    fn every_placeholder_is_bound_once_and_names_are_shared() {
        let cond = Cond::new().eq("owner", s("a")).number_is("version", 0).size_is("participants", 3);
        let change = Change::new().set("owner", s("b")).add("unread", n(1)).remove("last_message");
        let mut b = Binder::default();
        let update = b.update(&change);
        let condition = b.condition(&cond).unwrap();
        assert_eq!(update, "SET #n0 = :v0 ADD #n1 :v1 REMOVE #n2");
        assert_eq!(condition, "#n0 = :v2 AND (attribute_not_exists(#n3) OR #n3 = :v3) AND size(#n4) = :v4");
        let (names, values) = b.into_maps();
        let names = names.unwrap();
        assert_eq!(names.len(), 5);
        assert_eq!(names["#n0"], "owner");
        assert_eq!(values.unwrap().len(), 5);
    }

    #[test]
    fn conditions_show_their_values_in_place() {
        let cond =
            Cond::new().eq("message_count", n(3)).number_is("deleted_count", 0).number_is("version", 7);
        assert_eq!(
            cond.to_string(),
            "message_count = 3 AND (attribute_not_exists(deleted_count) OR deleted_count = 0) AND version = 7"
        );
        let either = Cond::new().missing("PK").or(Cond::new().le("window_end", n(10)));
        assert_eq!(either.to_string(), "(attribute_not_exists(PK) OR window_end <= 10)");
        let both = Cond::new().missing("w").or(Cond::new().gt("w", n(5)).contains("ids", s("x")));
        assert_eq!(both.to_string(), "(attribute_not_exists(w) OR (w > 5 AND contains(ids, \"x\")))");
        let mut b = Binder::default();
        assert_eq!(
            b.condition(&both).unwrap(),
            "(attribute_not_exists(#n0) OR (#n0 > :v0 AND contains(#n1, :v1)))"
        );
    }

    #[test]
    fn empty_expressions_are_not_sent() {
        let mut b = Binder::default();
        assert_eq!(b.condition(&Cond::new()), None);
        assert_eq!(b.into_maps(), (None, None));
        assert!(Change::new().is_empty());
    }
}
