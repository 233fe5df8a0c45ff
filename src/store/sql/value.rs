//! errsnap's own SQL values: what a statement is given and what a row
//! holds, the same for every backend. Each backend converts them at its
//! edge (SQLite coerces freely; PostgreSQL checks types, so an integer is
//! sent at the width the statement's parameter has, and a row's INT2,
//! INT4, INT8 or NUMERIC all read as [`Value::Int`]).

use crate::error::{Error, ErrorKind, Result};

/// One SQL value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
    /// A list for [`Dialect::any`](super::Dialect::any): an array in
    /// PostgreSQL, a JSON array in SQLite.
    Ints(Vec<i64>),
    Texts(Vec<String>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Real(_) => "a real",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
            Value::Bool(_) => "a boolean",
            Value::Ints(_) => "an integer list",
            Value::Texts(_) => "a text list",
        }
    }

    /// A list as JSON text (how SQLite is given one).
    pub(crate) fn list_json(&self) -> Option<String> {
        match self {
            Value::Ints(v) => serde_json::to_string(v).ok(),
            Value::Texts(v) => serde_json::to_string(v).ok(),
            _ => None,
        }
    }
}

/// What can be given to a statement.
pub(crate) trait ToValue {
    fn to_value(&self) -> Value;
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Int(i64::from(*self))
            }
        }
    )*};
}
int_value!(i64, i32, i16, u32, u16, u8);

impl ToValue for u64 {
    fn to_value(&self) -> Value {
        Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToValue for usize {
    fn to_value(&self) -> Value {
        Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Bytes(self.to_vec())
    }
}

impl ToValue for [i64] {
    fn to_value(&self) -> Value {
        Value::Ints(self.to_vec())
    }
}

impl ToValue for [String] {
    fn to_value(&self) -> Value {
        Value::Texts(self.to_vec())
    }
}

impl ToValue for Vec<String> {
    fn to_value(&self) -> Value {
        Value::Texts(self.clone())
    }
}

impl ToValue for Vec<i64> {
    fn to_value(&self) -> Value {
        Value::Ints(self.clone())
    }
}

impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

/// A statement's parameters: `params![a, b, c]`.
macro_rules! params {
    () => { &[] as &[$crate::store::sql::Value] };
    ($($e:expr),+ $(,)?) => {
        &[$($crate::store::sql::ToValue::to_value(&$e)),+] as &[$crate::store::sql::Value]
    };
}
pub(crate) use params;

/// What a row's value can be read as.
pub(crate) trait FromValue: Sized {
    /// `None` when the value is not of this type.
    fn from_value(v: &Value) -> Option<Self>;
    const NAME: &'static str;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<i64> {
        match v {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }
    const NAME: &'static str = "an integer";
}

impl FromValue for u64 {
    /// Counts and sizes: a negative one reads as 0.
    fn from_value(v: &Value) -> Option<u64> {
        i64::from_value(v).map(|i| i.max(0) as u64)
    }
    const NAME: &'static str = "an integer";
}

impl FromValue for u32 {
    /// Pids, lines, columns: out of range reads as the nearest bound.
    fn from_value(v: &Value) -> Option<u32> {
        i64::from_value(v).map(|i| i.clamp(0, i64::from(u32::MAX)) as u32)
    }
    const NAME: &'static str = "an integer";
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Option<f64> {
        match v {
            Value::Real(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
    const NAME: &'static str = "a number";
}

impl FromValue for bool {
    fn from_value(v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::Int(i) => Some(*i != 0),
            _ => None,
        }
    }
    const NAME: &'static str = "a boolean";
}

impl FromValue for String {
    fn from_value(v: &Value) -> Option<String> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
    const NAME: &'static str = "text";
}

impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Option<Vec<u8>> {
        match v {
            Value::Bytes(b) => Some(b.clone()),
            Value::Text(s) => Some(s.as_bytes().to_vec()),
            _ => None,
        }
    }
    const NAME: &'static str = "bytes";
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Option<T>> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
    const NAME: &'static str = T::NAME;
}

/// One row of a result.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Row(pub(crate) Vec<Value>);

impl Row {
    /// A row of `columns` values read one by one.
    pub(crate) fn read(columns: usize, mut get: impl FnMut(usize) -> Result<Value>) -> Result<Row> {
        (0..columns).map(&mut get).collect::<Result<_>>().map(Row)
    }

    /// Column `i` as a `T`.
    ///
    /// # Errors
    /// No such column, or a value of another type (a NULL read as a
    /// non-`Option`), named in the message.
    pub(crate) fn get<T: FromValue>(&self, i: usize) -> Result<T> {
        let v = self.0.get(i).ok_or_else(|| {
            Error::new(ErrorKind::Storage {
                context: format!("reading column {i} of a row of {}", self.0.len()),
            })
        })?;
        T::from_value(v).ok_or_else(|| {
            Error::new(ErrorKind::Storage {
                context: format!(
                    "reading column {i}: {} where {} was expected",
                    v.kind(),
                    T::NAME
                ),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_as_the_types_errsnap_stores() {
        let r = Row(vec![
            Value::Int(7),
            Value::Null,
            Value::Bool(true),
            Value::Text("x".into()),
            Value::Int(-3),
            Value::Real(1.5),
        ]);
        assert_eq!(r.get::<i64>(0).unwrap(), 7);
        assert_eq!(r.get::<Option<i64>>(1).unwrap(), None);
        assert_eq!(r.get::<Option<i64>>(0).unwrap(), Some(7));
        assert!(r.get::<bool>(2).unwrap());
        assert!(r.get::<bool>(0).unwrap(), "SQLite's 0/1");
        assert_eq!(r.get::<i64>(2).unwrap(), 1);
        assert_eq!(r.get::<String>(3).unwrap(), "x");
        assert_eq!(r.get::<u64>(4).unwrap(), 0, "a negative count is none");
        assert_eq!(r.get::<u32>(0).unwrap(), 7);
        assert_eq!(r.get::<f64>(5).unwrap(), 1.5);
        assert_eq!(r.get::<f64>(0).unwrap(), 7.0);
        let e = r.get::<i64>(1).unwrap_err().to_string();
        assert!(e.contains("column 1") && e.contains("NULL"), "{e}");
        let e = r.get::<String>(0).unwrap_err().to_string();
        assert!(e.contains("an integer") && e.contains("text"), "{e}");
        assert!(r
            .get::<i64>(9)
            .unwrap_err()
            .to_string()
            .contains("column 9"));
    }

    #[test]
    fn parameters_convert_from_rust_values() {
        let name = String::from("slack");
        let none: Option<i64> = None;
        let p = params![1i64, 2u32, "a", name, none, Some(3i32), true, 2.5, 7usize];
        assert_eq!(
            p,
            &[
                Value::Int(1),
                Value::Int(2),
                Value::Text("a".into()),
                Value::Text("slack".into()),
                Value::Null,
                Value::Int(3),
                Value::Bool(true),
                Value::Real(2.5),
                Value::Int(7),
            ]
        );
        assert_eq!(u64::MAX.to_value(), Value::Int(i64::MAX));
        let list = vec!["a".to_owned(), "b\"".to_owned()];
        assert_eq!(list.to_value().list_json().unwrap(), r#"["a","b\""]"#);
        assert_eq!(vec![1i64, 2].to_value().list_json().unwrap(), "[1,2]");
        assert_eq!(Value::Int(1).list_json(), None);
    }
}
