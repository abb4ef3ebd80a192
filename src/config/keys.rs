//! The set of valid configuration keys, read off the serde types themselves, so that unknown keys
//! in the file and overrides naming no key are caught with a suggestion, and the list can never
//! drift from the schema.
//!
//! A *probe* deserializer drives `Deserialize` for [`RawConfig`](super::schema::RawConfig): every
//! struct announces its field names to `deserialize_struct`, and the probe walks into each field
//! with a placeholder value. Keys are dotted paths; an array's elements are written `[]`
//! (`members[].peer_addr`).

use std::collections::BTreeMap;

use serde::de::value::{Error as ProbeError, StrDeserializer};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::Deserialize;

use super::schema::RawConfig;

/// What kind of value a key holds, which decides how an override's text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// A string (or path): an override's text is taken verbatim unless it is a quoted TOML string.
    Text,
    /// A table: overrides must name a key inside it or replace it with an inline TOML table.
    Table,
    /// Anything else (numbers, booleans, enums, arrays): an override's text is read as TOML.
    Value,
}

/// Every valid key, normalized (`[]` for array elements).
#[derive(Debug)]
pub(crate) struct Keys {
    kinds: BTreeMap<String, KeyKind>,
}

impl Keys {
    /// The keys of [`RawConfig`].
    pub(crate) fn of_config() -> Self {
        let mut kinds = BTreeMap::new();
        RawConfig::deserialize(Probe {
            path: String::new(),
            kinds: &mut kinds,
        })
        .expect("the probe can walk every type in the configuration schema");
        Self { kinds }
    }

    pub(crate) fn kind(&self, normalized: &str) -> Option<KeyKind> {
        self.kinds.get(normalized).copied()
    }

    /// All valid keys that hold values (not tables), for documentation and tests.
    pub(crate) fn leaves(&self) -> impl Iterator<Item = &str> {
        self.kinds
            .iter()
            .filter(|(_, kind)| **kind != KeyKind::Table)
            .map(|(key, _)| key.as_str())
    }

    /// The names of the keys directly inside the table at `parent` (`""` for the top level).
    pub(crate) fn children(&self, parent: &str) -> Vec<String> {
        self.kinds
            .keys()
            .filter_map(|key| match parent {
                "" => Some(key.as_str()),
                _ => key.strip_prefix(parent)?.strip_prefix('.'),
            })
            .filter(|rest| !rest.contains(['.', '[']))
            .map(str::to_owned)
            .collect()
    }

    /// The valid key most like `normalized`, if one is close enough to be a likely typo: compared
    /// whole, and by last segment (a key written in the wrong section).
    pub(crate) fn closest(&self, normalized: &str) -> Option<&str> {
        let last = |key: &str| key.rsplit(['.', ']']).next().unwrap_or(key).to_owned();
        let wanted_last = last(normalized);
        self.kinds
            .keys()
            .map(|key| {
                let whole = edit_distance(normalized, key);
                let by_last = edit_distance(&wanted_last, &last(key));
                (whole.min(by_last), key.as_str())
            })
            .filter(|(distance, key)| *distance <= (last(key).len() / 3).max(2))
            .min()
            .map(|(_, key)| key)
    }
}

/// Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// Walks a `Deserialize` impl, recording the key paths it asks for.
struct Probe<'k> {
    path: String,
    kinds: &'k mut BTreeMap<String, KeyKind>,
}

impl Probe<'_> {
    fn record(&mut self, kind: KeyKind) {
        if !self.path.is_empty() {
            // A key first seen as something else (e.g. an Option's inner type) keeps the most
            // specific kind: Text and Table are more specific than Value.
            let entry = self.kinds.entry(self.path.clone()).or_insert(kind);
            if *entry == KeyKind::Value {
                *entry = kind;
            }
        }
    }
}

fn unsupported<T>(what: &str) -> Result<T, ProbeError> {
    Err(de::Error::custom(format!(
        "the configuration schema probe does not support {what}"
    )))
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeError> {
        unsupported("self-describing values")
    }

    fn deserialize_bool<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value, ProbeError> {
        self.record(KeyKind::Value);
        v.visit_bool(false)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        self.deserialize_i64(v)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        self.deserialize_i64(v)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        self.deserialize_i64(v)
    }

    fn deserialize_i64<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value, ProbeError> {
        self.record(KeyKind::Value);
        v.visit_i64(0)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        self.deserialize_u64(v)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        self.deserialize_u64(v)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        self.deserialize_u64(v)
    }

    fn deserialize_u64<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value, ProbeError> {
        self.record(KeyKind::Value);
        v.visit_u64(0)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        self.deserialize_f64(v)
    }

    fn deserialize_f64<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value, ProbeError> {
        self.record(KeyKind::Value);
        v.visit_f64(0.0)
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        self.deserialize_str(v)
    }

    fn deserialize_str<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value, ProbeError> {
        self.record(KeyKind::Text);
        v.visit_str("")
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        self.deserialize_str(v)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeError> {
        unsupported("byte strings")
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeError> {
        unsupported("byte strings")
    }

    fn deserialize_option<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value, ProbeError> {
        self.record(KeyKind::Value);
        v.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeError> {
        unsupported("unit values")
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: V,
    ) -> Result<V::Value, ProbeError> {
        unsupported("unit structs")
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, ProbeError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(mut self, v: V) -> Result<V::Value, ProbeError> {
        self.record(KeyKind::Value);
        let element = format!("{}[]", self.path);
        v.visit_seq(OneElement {
            probe: Some(Probe {
                path: element,
                kinds: self.kinds,
            }),
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, ProbeError> {
        unsupported("tuples")
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        _: V,
    ) -> Result<V::Value, ProbeError> {
        unsupported("tuple structs")
    }

    fn deserialize_map<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeError> {
        unsupported("maps with free-form keys")
    }

    fn deserialize_struct<V: Visitor<'de>>(
        mut self,
        _: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ProbeError> {
        self.record(KeyKind::Table);
        v.visit_map(Fields {
            path: self.path,
            kinds: self.kinds,
            fields,
            next: 0,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        mut self,
        _: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ProbeError> {
        self.record(KeyKind::Value);
        let first = variants
            .first()
            .ok_or_else(|| de::Error::custom("an enum without variants"))?;
        v.visit_enum(UnitVariant(first))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        self.deserialize_str(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeError> {
        unsupported("ignored values")
    }
}

/// A struct's fields, each with a probe for its value.
struct Fields<'k> {
    path: String,
    kinds: &'k mut BTreeMap<String, KeyKind>,
    fields: &'static [&'static str],
    next: usize,
}

impl<'de> de::MapAccess<'de> for Fields<'_> {
    type Error = ProbeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ProbeError> {
        let Some(field) = self.fields.get(self.next) else {
            return Ok(None);
        };
        let key: StrDeserializer<'_, ProbeError> = field.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ProbeError> {
        let field = self.fields[self.next];
        self.next += 1;
        let path = if self.path.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.path)
        };
        seed.deserialize(Probe {
            path,
            kinds: self.kinds,
        })
    }
}

/// A sequence of one element, whose type the probe walks.
struct OneElement<'k> {
    probe: Option<Probe<'k>>,
}

impl<'de> de::SeqAccess<'de> for OneElement<'_> {
    type Error = ProbeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ProbeError> {
        self.probe.take().map(|p| seed.deserialize(p)).transpose()
    }
}

/// The first variant of an enum of unit variants (all the schema uses).
struct UnitVariant(&'static str);

impl<'de> de::EnumAccess<'de> for UnitVariant {
    type Error = ProbeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), ProbeError> {
        let name: StrDeserializer<'_, ProbeError> = self.0.into_deserializer();
        Ok((seed.deserialize(name)?, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariant {
    type Error = ProbeError;

    fn unit_variant(self) -> Result<(), ProbeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _: T) -> Result<T::Value, ProbeError> {
        unsupported("enum variants with data")
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, ProbeError> {
        unsupported("enum variants with data")
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, ProbeError> {
        unsupported("enum variants with data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_finds_nested_and_array_keys() {
        let keys = Keys::of_config();
        assert_eq!(keys.kind("cluster_id"), Some(KeyKind::Value));
        assert_eq!(keys.kind("secret"), Some(KeyKind::Text));
        assert_eq!(keys.kind("data_dir"), Some(KeyKind::Text));
        assert_eq!(keys.kind("timing"), Some(KeyKind::Table));
        assert_eq!(
            keys.kind("timing.heartbeat_interval_ms"),
            Some(KeyKind::Value)
        );
        assert_eq!(keys.kind("members[].peer_addr"), Some(KeyKind::Text));
        assert_eq!(keys.kind("members[]"), Some(KeyKind::Table));
        assert_eq!(keys.kind("dpdk.peers[].mac"), Some(KeyKind::Text));
        assert_eq!(keys.kind("rdma.device"), Some(KeyKind::Text));
        assert_eq!(keys.kind("timing.heartbeat_interval"), None);
    }

    #[test]
    fn closest_key_catches_typos_and_wrong_sections() {
        let keys = Keys::of_config();
        assert_eq!(
            keys.closest("timing.heartbeat_interval"),
            Some("timing.heartbeat_interval_ms")
        );
        assert_eq!(
            keys.closest("heartbeat_interval_ms"),
            Some("timing.heartbeat_interval_ms")
        );
        assert_eq!(
            keys.closest("members[].peer_adr"),
            Some("members[].peer_addr")
        );
        assert_eq!(keys.closest("completely_unrelated_thing"), None);
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
