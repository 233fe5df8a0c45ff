//! The shared SQL layer's connection on PostgreSQL: `?N` made `$N`,
//! statements prepared once per connection, rows streamed, and values
//! converted by the type the server gives each parameter and column (an
//! integer goes out as INT2, INT4 or INT8 as the column is, a JSONB column
//! reads as text, `sum()`'s NUMERIC as an integer).

use std::error::Error as StdError;

use bytes::{BufMut, BytesMut};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{FromSql, IsNull, ToSql, Type};
use postgres::GenericClient;

use super::connect::PgTarget;
use super::Stmts;
use crate::error::Result;
use crate::store::sql::{dollar_params, Conn, Dialect, Row, Value};

type BoxError = Box<dyn StdError + Sync + Send>;

/// A client or a transaction on it, with the connection's statements.
pub(crate) struct PgConn<'a, C: GenericClient> {
    pub(crate) client: &'a mut C,
    pub(crate) stmts: &'a mut Stmts,
    pub(crate) target: &'a PgTarget,
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, BoxError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => int_to_sql(*i, ty, out),
            Value::Bool(b) if *ty == Type::BOOL => b.to_sql(ty, out),
            Value::Bool(b) => int_to_sql(i64::from(*b), ty, out),
            Value::Real(f) if *ty == Type::FLOAT4 => (*f as f32).to_sql(ty, out),
            Value::Real(f) => f.to_sql(ty, out),
            Value::Text(s) if *ty == Type::JSONB => {
                out.put_u8(1);
                out.put_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            Value::Text(s) => s.as_str().to_sql(ty, out),
            Value::Bytes(b) => b.as_slice().to_sql(ty, out),
            Value::Ints(v) if *ty == Type::INT4_ARRAY => v
                .iter()
                .map(|&i| i32::try_from(i))
                .collect::<std::result::Result<Vec<_>, _>>()?
                .to_sql(ty, out),
            Value::Ints(v) => v.to_sql(ty, out),
            Value::Texts(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

fn int_to_sql(i: i64, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, BoxError> {
    match *ty {
        Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
        Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
        Type::FLOAT8 => (i as f64).to_sql(ty, out),
        Type::BOOL => (i != 0).to_sql(ty, out),
        Type::TEXT | Type::VARCHAR => i.to_string().as_str().to_sql(ty, out),
        _ => i.to_sql(ty, out),
    }
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Value, BoxError> {
        Ok(match *ty {
            Type::INT2 => Value::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::INT4 => Value::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::OID => Value::Int(i64::from(u32::from_sql(ty, raw)?)),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::BOOL => Value::Bool(bool::from_sql(ty, raw)?),
            Type::BYTEA => Value::Bytes(raw.to_vec()),
            Type::JSONB => {
                Value::Text(String::from_utf8_lossy(raw.get(1..).unwrap_or(&[])).into_owned())
            }
            Type::NUMERIC => numeric(raw)?,
            Type::INT8_ARRAY => Value::Ints(Vec::<i64>::from_sql(ty, raw)?),
            Type::TEXT_ARRAY => Value::Texts(Vec::<String>::from_sql(ty, raw)?),
            _ => Value::Text(String::from_utf8_lossy(raw).into_owned()),
        })
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Value, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A NUMERIC in binary form (what `sum(bigint)` returns): an integer when
/// it has no fraction, else a real.
fn numeric(raw: &[u8]) -> std::result::Result<Value, BoxError> {
    let word = |i: usize| -> std::result::Result<i64, BoxError> {
        let b = raw.get(i * 2..i * 2 + 2).ok_or("a short NUMERIC")?;
        Ok(i64::from(i16::from_be_bytes([b[0], b[1]])))
    };
    let (ndigits, weight, sign) = (word(0)?, word(1)?, word(2)?);
    if sign == 0xC000u16 as i16 as i64 {
        return Ok(Value::Real(f64::NAN));
    }
    let mut value = 0f64;
    for i in 0..ndigits.max(0) {
        let digit = word(4 + i as usize)?;
        value += digit as f64 * 10000f64.powi((weight - i) as i32);
    }
    if sign == 0x4000 {
        value = -value;
    }
    if value.fract() == 0.0 && value.abs() < 9.0e18 {
        Ok(Value::Int(value as i64))
    } else {
        Ok(Value::Real(value))
    }
}

impl<C: GenericClient> PgConn<'_, C> {
    fn statement(&mut self, doing: &str, sql: &str) -> Result<postgres::Statement> {
        let text = dollar_params(sql);
        self.stmts
            .get(self.client, &text)
            .map_err(|e| self.target.error(doing, e))
    }
}

impl<C: GenericClient> Conn for PgConn<'_, C> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, doing: &str, sql: &str, params: &[Value]) -> Result<u64> {
        let stmt = self.statement(doing, sql)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        self.client
            .execute(&stmt, &refs)
            .map_err(|e| self.target.error(doing, e))
    }

    fn each(
        &mut self,
        doing: &str,
        sql: &str,
        params: &[Value],
        each: &mut dyn FnMut(Row) -> Result<bool>,
    ) -> Result<()> {
        let stmt = self.statement(doing, sql)?;
        let target = self.target;
        let mut rows = self
            .client
            .query_raw(&stmt, params.iter())
            .map_err(|e| target.error(doing, e))?;
        while let Some(r) = rows.next().map_err(|e| target.error(doing, e))? {
            let row = Row::read(r.len(), |i| {
                r.try_get::<_, Value>(i).map_err(|e| target.error(doing, e))
            })?;
            if !each(row)? {
                break;
            }
        }
        Ok(())
    }

    fn transaction(
        &mut self,
        doing: &str,
        f: &mut dyn FnMut(&mut dyn Conn) -> Result<()>,
    ) -> Result<()> {
        let target = self.target;
        let mut tx = self
            .client
            .transaction()
            .map_err(|e| target.error(doing, e))?;
        f(&mut PgConn {
            client: &mut tx,
            stmts: self.stmts,
            target,
        })?;
        tx.commit().map_err(|e| target.error(doing, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerics_read_as_integers_or_reals() {
        // 12345678 = 1234 * 10000 + 5678: two digits, weight 1.
        let raw = [0, 2, 0, 1, 0, 0, 0, 0, 0x04, 0xD2, 0x16, 0x2E];
        assert_eq!(numeric(&raw).unwrap(), Value::Int(12_345_678));
        // -7, weight 0.
        let raw = [0, 1, 0, 0, 0x40, 0, 0, 0, 0, 7];
        assert_eq!(numeric(&raw).unwrap(), Value::Int(-7));
        // 0: no digits.
        assert_eq!(numeric(&[0, 0, 0, 0, 0, 0, 0, 0]).unwrap(), Value::Int(0));
        // 1.5 = 1 + 5000 / 10000.
        let raw = [0, 2, 0, 0, 0, 0, 0, 1, 0, 1, 0x13, 0x88];
        assert_eq!(numeric(&raw).unwrap(), Value::Real(1.5));
        assert!(
            numeric(&[0, 3]).is_err(),
            "short input is an error, not a panic"
        );
    }

    #[test]
    fn integers_go_out_at_the_parameters_width() {
        let mut out = BytesMut::new();
        Value::Int(7).to_sql(&Type::INT2, &mut out).unwrap();
        assert_eq!(&out[..], &[0, 7]);
        out.clear();
        Value::Int(7).to_sql(&Type::INT4, &mut out).unwrap();
        assert_eq!(&out[..], &[0, 0, 0, 7]);
        out.clear();
        Value::Int(7).to_sql(&Type::INT8, &mut out).unwrap();
        assert_eq!(out.len(), 8);
        assert!(Value::Int(1 << 40).to_sql(&Type::INT4, &mut out).is_err());
        out.clear();
        Value::Text("{}".into())
            .to_sql(&Type::JSONB, &mut out)
            .unwrap();
        assert_eq!(&out[..], b"\x01{}");
        out.clear();
        Value::Bool(true).to_sql(&Type::INT2, &mut out).unwrap();
        assert_eq!(&out[..], &[0, 1]);
        assert_eq!(
            Value::from_sql(&Type::JSONB, b"\x01{\"a\":1}").unwrap(),
            Value::Text("{\"a\":1}".into())
        );
        assert_eq!(
            Value::from_sql(&Type::INT2, &[0, 3]).unwrap(),
            Value::Int(3)
        );
    }
}
