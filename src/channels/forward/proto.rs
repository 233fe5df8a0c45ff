//! The little of the protobuf wire format OTLP/HTTP needs: writing the
//! messages of `ExportLogsServiceRequest`, and reading the one field of the
//! answer that matters (`partial_success`). The field numbers are those of
//! opentelemetry-proto; the tests decode what this writes with the
//! official definitions (PyPI `opentelemetry-proto`).

/// One message being written.
#[derive(Debug, Default, Clone)]
pub(crate) struct Msg(pub(crate) Vec<u8>);

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Msg {
    fn tag(&mut self, field: u32, wire: u64) {
        varint(&mut self.0, (u64::from(field) << 3) | wire);
    }

    /// An `int64`, `uint32` or enum field (negative numbers take ten bytes,
    /// as protobuf writes them).
    pub(crate) fn int(&mut self, field: u32, v: i64) -> &mut Self {
        self.tag(field, VARINT);
        varint(&mut self.0, v as u64);
        self
    }

    /// A `fixed64` field.
    pub(crate) fn fixed64(&mut self, field: u32, v: u64) -> &mut Self {
        self.tag(field, FIXED64);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `double` field.
    pub(crate) fn double(&mut self, field: u32, v: f64) -> &mut Self {
        self.fixed64(field, v.to_bits())
    }

    /// A `bytes` field.
    pub(crate) fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Self {
        self.tag(field, LEN);
        varint(&mut self.0, v.len() as u64);
        self.0.extend_from_slice(v);
        self
    }

    /// A `string` field.
    pub(crate) fn string(&mut self, field: u32, v: &str) -> &mut Self {
        self.bytes(field, v.as_bytes())
    }

    /// An embedded message field.
    pub(crate) fn message(&mut self, field: u32, m: &Msg) -> &mut Self {
        self.bytes(field, &m.0)
    }
}

/// Reads a varint at `*at`, moving past it.
fn read_varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// One field read: its number, wire type, value (varint and fixed) and
/// payload (length-delimited).
type Field<'a> = (u64, u64, u64, &'a [u8]);

/// The fields of a message.
fn fields(buf: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let key = read_varint(buf, &mut at)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            VARINT => out.push((field, wire, read_varint(buf, &mut at)?, &buf[..0])),
            FIXED64 => {
                let b = buf.get(at..at + 8)?;
                at += 8;
                out.push((
                    field,
                    wire,
                    u64::from_le_bytes(b.try_into().ok()?),
                    &buf[..0],
                ));
            }
            LEN => {
                let n = usize::try_from(read_varint(buf, &mut at)?).ok()?;
                let b = buf.get(at..at.checked_add(n)?)?;
                at += n;
                out.push((field, wire, 0, b));
            }
            5 => {
                let b = buf.get(at..at + 4)?;
                at += 4;
                let v = u32::from_le_bytes(b.try_into().ok()?);
                out.push((field, wire, u64::from(v), &buf[..0]));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// From an `ExportLogsServiceResponse`: the records the collector
/// rejected and its message, when it says it rejected some
/// (`partial_success`, field 1: `rejected_log_records` 1, `error_message` 2).
pub(crate) fn rejected(answer: &[u8]) -> Option<(i64, String)> {
    let partial = fields(answer)?
        .into_iter()
        .find(|f| f.0 == 1 && f.1 == LEN)?
        .3;
    let mut n = 0i64;
    let mut message = String::new();
    for (field, wire, v, b) in fields(partial)? {
        match (field, wire) {
            (1, VARINT) => n = v as i64,
            (2, LEN) => message = String::from_utf8_lossy(b).into_owned(),
            _ => {}
        }
    }
    (n > 0).then_some((n, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_written_as_protobuf_does() {
        // Values checked against Python's protobuf (google.protobuf).
        let mut m = Msg::default();
        m.int(2, 17);
        assert_eq!(m.0, [0x10, 17]);
        let mut m = Msg::default();
        m.int(3, 300);
        assert_eq!(m.0, [0x18, 0xac, 0x02]);
        let mut m = Msg::default();
        m.int(3, -1);
        assert_eq!(m.0.len(), 11);
        assert_eq!(m.0[10], 0x01);
        let mut m = Msg::default();
        m.string(1, "hi");
        assert_eq!(m.0, [0x0a, 2, b'h', b'i']);
        let mut m = Msg::default();
        m.fixed64(1, 1);
        assert_eq!(m.0, [0x09, 1, 0, 0, 0, 0, 0, 0, 0]);
        let mut m = Msg::default();
        m.double(4, 1.5);
        assert_eq!(m.0, [0x21, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f]);
        let mut inner = Msg::default();
        inner.int(1, 1);
        let mut m = Msg::default();
        m.message(6, &inner);
        assert_eq!(m.0, [0x32, 2, 0x08, 1]);
    }

    #[test]
    fn a_partial_success_is_read_back() {
        let mut p = Msg::default();
        p.int(1, 3).string(2, "bad attribute");
        let mut r = Msg::default();
        r.message(1, &p);
        assert_eq!(rejected(&r.0), Some((3, "bad attribute".to_owned())));
        let mut p = Msg::default();
        p.int(1, 0);
        let mut r = Msg::default();
        r.message(1, &p);
        assert_eq!(rejected(&r.0), None);
        assert_eq!(rejected(&[]), None);
        assert_eq!(rejected(&[0x0a, 0x05, 0x08]), None, "a cut answer");
        assert_eq!(rejected(&[0xff; 12]), None);
    }
}
