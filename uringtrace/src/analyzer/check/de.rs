//! A serde deserializer over a parsed [`toml::Value`] whose errors say where they are.
//!
//! toml's own errors name the key only in their display text (and not at all for an
//! unknown field, whose name is in the message). Here the error carries the dotted
//! path of tables and keys, and what went wrong as data, so the config can name the
//! key and the table in its own words. Array elements add nothing to the path: the
//! array's key names their errors.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::forward_to_deserialize_any;

/// A deserialization error at `path` (outermost key first).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct DeError {
    pub path: Vec<String>,
    pub kind: DeErrorKind,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum DeErrorKind {
    /// The last element of the path is a key its table does not have.
    UnknownKey { expected: &'static [&'static str] },
    /// The value at the path has the wrong type, or a value out of range for it.
    WrongType,
    /// Anything else serde reports (a missing field: none is required today).
    Other(String),
}

impl DeError {
    fn at(mut self, key: String) -> DeError {
        self.path.insert(0, key);
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.join(".");
        match &self.kind {
            DeErrorKind::UnknownKey { .. } => write!(f, "unknown key `{path}`"),
            DeErrorKind::WrongType => write!(f, "`{path}` has the wrong type"),
            DeErrorKind::Other(msg) => write!(f, "`{path}`: {msg}"),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            path: vec![],
            kind: DeErrorKind::Other(msg.to_string()),
        }
    }

    fn invalid_type(_: de::Unexpected, _: &dyn de::Expected) -> Self {
        DeError {
            path: vec![],
            kind: DeErrorKind::WrongType,
        }
    }

    fn invalid_value(_: de::Unexpected, _: &dyn de::Expected) -> Self {
        // -1 for a u64: the type of a count is "a non-negative integer".
        DeError {
            path: vec![],
            kind: DeErrorKind::WrongType,
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            path: vec![field.to_string()],
            kind: DeErrorKind::UnknownKey { expected },
        }
    }
}

/// Deserializes `T` from `value`.
pub(super) fn from_value<T: de::DeserializeOwned>(value: toml::Value) -> Result<T, DeError> {
    T::deserialize(ValueDe(value))
}

struct ValueDe(toml::Value);

impl<'de> de::Deserializer<'de> for ValueDe {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        use toml::Value;
        match self.0 {
            Value::String(s) => visitor.visit_string(s),
            Value::Integer(i) => visitor.visit_i64(i),
            Value::Float(f) => visitor.visit_f64(f),
            Value::Boolean(b) => visitor.visit_bool(b),
            // No setting is a date: a string visitor must not take one for a string.
            Value::Datetime(_) => Err(de::Error::invalid_type(
                de::Unexpected::Other("a datetime"),
                &visitor,
            )),
            Value::Array(a) => visitor.visit_seq(Seq(a.into_iter())),
            Value::Table(t) => visitor.visit_map(Map {
                entries: t.into_iter(),
                key: None,
                value: None,
            }),
        }
    }

    /// A key that is present is `Some`; absent ones never reach the deserializer.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    /// Only a table: serde's derived structs would also take an array of their fields
    /// in order, and an empty array would pass as an empty table.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.0 {
            toml::Value::Table(_) => self.deserialize_any(visitor),
            _ => Err(de::Error::invalid_type(
                de::Unexpected::Other("not a table"),
                &visitor,
            )),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

struct Seq(std::vec::IntoIter<toml::Value>);

impl<'de> SeqAccess<'de> for Seq {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        self.0
            .next()
            .map(|v| seed.deserialize(ValueDe(v)))
            .transpose()
    }
}

struct Map {
    entries: toml::map::IntoIter<String, toml::Value>,
    /// The key whose value is next, kept to name it in the value's errors.
    key: Option<String>,
    value: Option<toml::Value>,
}

impl<'de> MapAccess<'de> for Map {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        let de: de::value::StrDeserializer<'_, DeError> = key.as_str().into_deserializer();
        let out = seed.deserialize(de)?;
        self.key = Some(key);
        Ok(Some(out))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let key = self.key.take().unwrap_or_default();
        let value = self.value.take().ok_or_else(|| DeError {
            path: vec![key.clone()],
            kind: DeErrorKind::Other("a key without a value".into()),
        })?;
        seed.deserialize(ValueDe(value)).map_err(|e| e.at(key))
    }
}
