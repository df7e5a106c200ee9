use log::kv;
use serde::Serialize;

use super::MAX_ELEMENTS;
use crate::record::capture::capture_event;
use crate::record::{AttrValue, LogEvent, MAX_DEPTH};

fn capture_with(kvs: &[(&str, kv::Value<'_>)]) -> LogEvent {
    let record = log::Record::builder()
        .args(format_args!("x"))
        .key_values(&kvs)
        .build();
    capture_event(&record).0
}

fn s(v: &str) -> AttrValue {
    AttrValue::Str(v.into())
}

fn map(entries: Vec<(&str, AttrValue)>) -> AttrValue {
    AttrValue::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

fn array(values: Vec<AttrValue>) -> AttrValue {
    AttrValue::Array(values.into())
}

#[derive(Serialize)]
struct Order {
    id: u64,
    items: Vec<&'static str>,
    total: f64,
    paid: bool,
    note: Option<&'static str>,
}

#[derive(Serialize)]
enum Event {
    Unit,
    Moved { x: i32, y: i32 },
    Pair(u8, char),
}

/// A byte string, as `serde_bytes` writes one.
struct Raw(&'static [u8]);

impl Serialize for Raw {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

#[test]
fn serde_and_sval_values_keep_their_structure_and_types() {
    let order = Order {
        id: 7,
        items: vec!["a", "b"],
        total: 12.5,
        paid: true,
        note: None,
    };
    let tags: std::collections::BTreeMap<&str, i64> = [("x", 1), ("y", -2)].into();
    let variants = (
        Event::Unit,
        Event::Moved { x: 1, y: 2 },
        Event::Pair(9, 'z'),
    );
    let e = capture_with(&[
        ("order", kv::Value::from_serde(&order)),
        ("tags", kv::Value::from_sval(&tags)),
        ("raw", kv::Value::from_serde(&Raw(b"\x00\xff"))),
        ("variants", kv::Value::from_serde(&variants)),
        ("big", kv::Value::from_serde(&u128::MAX)),
        ("user", kv::Value::from("bob")),
    ]);
    let got: Vec<_> = e.attributes.iter().map(|a| (&*a.key, &a.value)).collect();
    let want = [
        (
            "order",
            map(vec![
                ("id", AttrValue::Int(7)),
                ("items", array(vec![s("a"), s("b")])),
                ("total", AttrValue::Double(12.5)),
                ("paid", AttrValue::Bool(true)),
                ("note", AttrValue::Null),
            ]),
        ),
        (
            "tags",
            map(vec![("x", AttrValue::Int(1)), ("y", AttrValue::Int(-2))]),
        ),
        ("raw", AttrValue::Bytes(b"\x00\xff".as_slice().into())),
        (
            "variants",
            array(vec![
                s("Unit"),
                map(vec![(
                    "Moved",
                    map(vec![("x", AttrValue::Int(1)), ("y", AttrValue::Int(2))]),
                )]),
                map(vec![("Pair", array(vec![AttrValue::Int(9), s("z")]))]),
            ]),
        ),
        ("big", s(&u128::MAX.to_string())),
        ("user", s("bob")),
    ];
    assert_eq!(got, want.iter().map(|(k, v)| (*k, v)).collect::<Vec<_>>());
    assert_eq!(e.dropped_attributes, 0);
}

#[test]
fn nesting_deeper_than_the_limit_is_marked_and_counted() {
    let mut deep = serde_json::json!(1);
    for _ in 0..MAX_DEPTH + 4 {
        deep = serde_json::json!([deep]);
    }
    let e = capture_with(&[("deep", kv::Value::from_serde(&deep))]);
    let mut v = &e.attributes[0].value;
    let mut levels = 0;
    while let AttrValue::Array(a) = v {
        assert_eq!(a.len(), 1);
        v = &a[0];
        levels += 1;
    }
    assert_eq!(levels, MAX_DEPTH);
    assert_eq!(v, &s(super::TOO_DEEP));
    assert_eq!(e.dropped_attributes, 1, "the value that was too deep");
}

#[test]
fn elements_past_the_limit_are_left_out_marked_and_counted() {
    let many: Vec<u32> = (0..MAX_ELEMENTS as u32 + 976).collect();
    let mut wide = serde_json::Map::new();
    for i in 0..MAX_ELEMENTS + 10 {
        wide.insert(format!("k{i}"), serde_json::json!(i));
    }
    let e = capture_with(&[("many", kv::Value::from_serde(&many))]);
    let AttrValue::Array(a) = &e.attributes[0].value else {
        panic!("{e:?}")
    };
    assert_eq!(a.len(), MAX_ELEMENTS + 1);
    assert_eq!(a[MAX_ELEMENTS - 1], AttrValue::Int(MAX_ELEMENTS as i64 - 1));
    assert_eq!(a[MAX_ELEMENTS], s("…[976 more]"));
    assert_eq!(e.dropped_attributes, 976);

    let e = capture_with(&[("wide", kv::Value::from_serde(&wide))]);
    let AttrValue::Map(m) = &e.attributes[0].value else {
        panic!("{e:?}")
    };
    assert_eq!(m.len(), MAX_ELEMENTS + 1);
    assert_eq!(m[MAX_ELEMENTS], ("…".into(), s("[10 more]")));
    assert_eq!(e.dropped_attributes, 10);
}

#[test]
fn a_huge_structure_stays_within_the_value_limit() {
    let strings: Vec<String> = (0..200)
        .map(|i| format!("{i}{}", "x".repeat(1000)))
        .collect();
    let e = capture_with(&[("strings", kv::Value::from_serde(&strings))]);
    let AttrValue::Array(a) = &e.attributes[0].value else {
        panic!("{e:?}")
    };
    let bytes: usize = a
        .iter()
        .map(|v| match v {
            AttrValue::Str(s) => s.len(),
            other => panic!("{other:?}"),
        })
        .sum();
    assert!(bytes <= super::super::MAX_VALUE_BYTES + 64, "{bytes}");
    assert!(e.dropped_attributes > 0);
    assert!(matches!(a.last(), Some(AttrValue::Str(m)) if m.ends_with("more]")));
}

/// Serializes two fields, then fails or panics.
struct Breaks {
    panic: bool,
}

impl Serialize for Breaks {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeMap};
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("a", &1)?;
        m.serialize_entry("b", &"two")?;
        if self.panic {
            panic!("broken Serialize");
        }
        Err(S::Error::custom("broken"))
    }
}

#[test]
fn a_value_that_fails_is_its_text_and_one_that_panics_is_rolled_back() {
    let e = capture_with(&[
        ("a", kv::Value::from(1i64)),
        ("fails", kv::Value::from_serde(&Breaks { panic: false })),
        ("c", kv::Value::from(3i64)),
    ]);
    let keys: Vec<_> = e.attributes.iter().map(|a| &*a.key).collect();
    assert_eq!(keys, ["a", "fails", "c"]);
    assert!(matches!(e.attributes[1].value, AttrValue::Str(_)), "{e:?}");

    let e = capture_with(&[
        ("a", kv::Value::from(1i64)),
        ("panics", kv::Value::from_serde(&Breaks { panic: true })),
        ("c", kv::Value::from(3i64)),
    ]);
    let keys: Vec<_> = e.attributes.iter().map(|a| &*a.key).collect();
    assert_eq!(keys, ["a"], "nothing of the panicking value is left");
    assert_eq!(e.dropped_attributes, 2);
}

#[test]
fn map_keys_that_are_not_text_are_written_as_text_or_the_value_as_its_text() {
    let by_number: std::collections::BTreeMap<u32, bool> = [(1, true)].into();
    let by_pair: std::collections::BTreeMap<(u8, u8), bool> = [((1, 2), true)].into();
    let e = capture_with(&[
        ("by_number", kv::Value::from_serde(&by_number)),
        ("by_pair", kv::Value::from_serde(&by_pair)),
    ]);
    assert_eq!(
        e.attributes[0].value,
        map(vec![("1", AttrValue::Bool(true))])
    );
    assert!(matches!(e.attributes[1].value, AttrValue::Str(_)), "{e:?}");
}

/// Calls `serialize_key` and ends the map without the value.
struct KeyWithoutValue;

impl Serialize for KeyWithoutValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("a", &1)?;
        m.serialize_key("b")?;
        m.end()
    }
}

/// A sequence that never ends.
struct Endless;

impl Serialize for Endless {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(None)?;
        loop {
            seq.serialize_element(&0u8)?;
        }
    }
}

#[test]
fn a_key_without_its_value_gets_a_null_and_the_next_pair_still_reads() {
    let e = capture_with(&[
        ("m", kv::Value::from_serde(&KeyWithoutValue)),
        ("after", kv::Value::from(2i64)),
    ]);
    assert_eq!(
        e.attributes[0].value,
        map(vec![("a", AttrValue::Int(1)), ("b", AttrValue::Null)])
    );
    assert_eq!(e.attributes[1].value, AttrValue::Int(2));
}

#[test]
fn huge_keys_stay_within_the_value_limit() {
    let mut wide = std::collections::BTreeMap::new();
    wide.insert("a".repeat(60_000), 1);
    wide.insert("b".repeat(65_536), 2);
    wide.insert("c".repeat(65_536), 3);
    let e = capture_with(&[("wide", kv::Value::from_serde(&wide))]);
    let AttrValue::Map(m) = &e.attributes[0].value else {
        panic!("{e:?}")
    };
    let bytes: usize = m.iter().map(|(k, _)| k.len()).sum();
    assert!(bytes <= super::super::MAX_VALUE_BYTES + 64, "{bytes}");
}

#[test]
fn a_sequence_that_never_ends_costs_bounded_time_and_is_left_out() {
    let e = capture_with(&[
        ("endless", kv::Value::from_serde(&Endless)),
        ("after", kv::Value::from(2i64)),
    ]);
    let keys: Vec<_> = e.attributes.iter().map(|a| &*a.key).collect();
    assert_eq!(keys, ["after"]);
    assert_eq!(e.dropped_attributes, 1);
}

#[test]
fn nulls_are_empty_values_and_f32_keeps_its_decimal() {
    let e = capture_with(&[
        ("none", kv::Value::from_serde(&Option::<u8>::None)),
        ("unit", kv::Value::from_serde(&())),
        ("f", kv::Value::from_serde(&[0.1f32])),
    ]);
    let values: Vec<_> = e.attributes.iter().map(|a| a.value.clone()).collect();
    assert_eq!(
        values,
        [
            AttrValue::Null,
            AttrValue::Null,
            array(vec![AttrValue::Double(0.1)])
        ]
    );
}

/// Ignores the error of an element that failed half-way.
struct Swallows;

impl Serialize for Swallows {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(None)?;
        let _ = seq.serialize_element(&Breaks { panic: false });
        seq.serialize_element(&1)?;
        seq.end()
    }
}

#[test]
fn a_structure_left_part_written_by_its_serialize_is_refused() {
    let mut buf = vec![0u8];
    assert_eq!(
        super::write(&mut buf, 0, &Swallows, 1024),
        Err(super::Unserializable::Shape)
    );
    // Through `log` (type-erased), such a value makes erased-serde panic: rolled back, and the
    // record's remaining pairs counted as left out; the record still reads.
    let e = capture_with(&[
        ("swallows", kv::Value::from_serde(&Swallows)),
        ("after", kv::Value::from(2i64)),
    ]);
    assert!(e.attributes.is_empty(), "{e:?}");
    assert_eq!(e.dropped_attributes, 2);
}
