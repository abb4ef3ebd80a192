//! How the CLI shows keys, values and events: printable bytes as they are, others escaped, so any
//! output line can be pasted back into a command.

use crate::store::{Event, EventKind, KeyValue};

/// `bytes` as text, with non-printable bytes escaped (`\xNN`, `\n`, ...).
pub fn quote(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// `key = value` with the MVCC metadata.
pub fn print_kv(kv: &KeyValue) {
    println!("{}", kv_line(kv));
}

pub fn kv_line(kv: &KeyValue) -> String {
    let lease = if kv.lease == 0 {
        String::new()
    } else {
        format!(" lease={:#x}", kv.lease)
    };
    format!(
        "{} = {}  (create={} mod={} version={}{lease})",
        quote(&kv.key),
        quote(&kv.value),
        kv.create_revision,
        kv.mod_revision,
        kv.version
    )
}

/// One event per line: `PUT key = value (rev N)` or `DELETE key (rev N)`.
pub fn event_line(event: &Event) -> String {
    match event.kind {
        EventKind::Put => format!(
            "PUT {} = {}  (revision {})",
            quote(&event.kv.key),
            quote(&event.kv.value),
            event.revision()
        ),
        EventKind::Delete => format!(
            "DELETE {}  (revision {})",
            quote(&event.kv.key),
            event.revision()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_bytes_are_escaped() {
        assert_eq!(quote(b"a b\n\xff"), "a b\\n\\xff");
    }
}
