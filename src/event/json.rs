//! Bounds on user-supplied JSON (`extra`).

/// How deep user-supplied JSON (`extra`) may nest; deeper values are
/// replaced by [`DEPTH_MARKER`] where they enter, so capture, the spool
/// (serde_json refuses more than 128 levels) and the store agree, and no
/// recursive serialize or drop can overflow a thread's stack.
pub(crate) const MAX_JSON_DEPTH: usize = 64;

/// What replaces a value nested deeper than [`MAX_JSON_DEPTH`].
pub(crate) const DEPTH_MARKER: &str = "[errsnap: nested deeper than 64 levels]";

/// Cuts `v` at [`MAX_JSON_DEPTH`] levels (`v` itself is level 1), without
/// recursion. Returns how many values were replaced by the marker.
pub(crate) fn bound_json_depth(v: &mut serde_json::Value) -> u32 {
    use serde_json::Value;
    let mut cut = 0;
    let mut stack: Vec<(&mut Value, usize)> = vec![(v, 1)];
    while let Some((v, depth)) = stack.pop() {
        if depth > MAX_JSON_DEPTH && (v.is_array() || v.is_object()) {
            drop_json(std::mem::replace(v, Value::String(DEPTH_MARKER.to_owned())));
            cut += 1;
            continue;
        }
        match v {
            Value::Array(a) => stack.extend(a.iter_mut().map(|x| (x, depth + 1))),
            Value::Object(o) => stack.extend(o.values_mut().map(|x| (x, depth + 1))),
            _ => {}
        }
    }
    cut
}

/// [`bound_json_depth`] over every value of a map (each value is level 1).
pub(crate) fn bound_map_depth(m: &mut serde_json::Map<String, serde_json::Value>) -> u32 {
    m.values_mut().map(bound_json_depth).sum()
}

/// Drops a JSON value of any depth without recursion (serde_json's own
/// `Drop` recurses once per level).
pub(crate) fn drop_json(v: serde_json::Value) {
    use serde_json::Value;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(a) => stack.extend(a),
            Value::Object(o) => stack.extend(o.into_iter().map(|(_, x)| x)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn nested(depth: usize) -> Value {
        let mut v = json!("leaf");
        for _ in 1..depth {
            v = Value::Array(vec![v]);
        }
        v
    }

    fn depth_of(v: &Value) -> usize {
        let mut d = 1;
        let mut cur = v;
        while let Value::Array(a) = cur {
            match a.first() {
                Some(x) => {
                    d += 1;
                    cur = x;
                }
                None => break,
            }
        }
        d
    }

    #[test]
    fn deep_json_is_cut_at_the_limit_without_recursion() {
        // At the limit: untouched.
        let mut v = nested(MAX_JSON_DEPTH);
        assert_eq!(bound_json_depth(&mut v), 0);
        assert_eq!(v, nested(MAX_JSON_DEPTH));
        // One level more: the innermost container becomes the marker.
        let mut v = nested(MAX_JSON_DEPTH + 2);
        assert_eq!(bound_json_depth(&mut v), 1);
        // 64 levels of containers, then the marker in place of the 65th.
        assert_eq!(depth_of(&v), MAX_JSON_DEPTH + 1);
        let mut cur = &v;
        while let Value::Array(a) = cur {
            cur = &a[0];
        }
        assert_eq!(cur, &json!(DEPTH_MARKER));
        // 30,000 levels: no stack overflow, and the result survives a round
        // trip through serde_json (which refuses more than 128).
        let mut v = nested(30_000);
        assert_eq!(bound_json_depth(&mut v), 1);
        let text = serde_json::to_string(&v).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
        // Objects count as levels too; siblings are each cut.
        let mut m = serde_json::Map::new();
        let mut o = json!({"k": nested(MAX_JSON_DEPTH + 1)});
        m.insert("a".into(), o.clone());
        m.insert("b".into(), json!([1, 2]));
        assert_eq!(bound_map_depth(&mut m), 1);
        assert_eq!(m["b"], json!([1, 2]));
        assert_eq!(bound_json_depth(&mut o), 1);
        assert_eq!(o["k"].as_array().map(Vec::len), Some(1));
    }
}
