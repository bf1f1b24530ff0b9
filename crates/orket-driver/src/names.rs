//! Names in the driver's checks and messages: a name must be one path component, lists of
//! names read `a, b` or `none`.

use crate::outcome::{refuse, Fail};
use orket_core::assets::{is_plain_name, Team, MAX_NAME_BYTES};

/// Refuses `name` (the argument `field`) unless it is a plain name.
pub(crate) fn plain(field: &str, name: &str) -> Result<(), Fail> {
    if name.len() > MAX_NAME_BYTES {
        let start: String = name.chars().take(20).collect();
        return refuse(format!(
            "{field}: \"{start}...\" is {} bytes long; a name has at most {MAX_NAME_BYTES}",
            name.len()
        ));
    }
    if is_plain_name(name) {
        Ok(())
    } else {
        refuse(format!(
            "{field}: \"{name}\" is not a plain name (one path component: no `/`, `\\` or leading `.`)"
        ))
    }
}

/// `items` comma-separated, or `none`.
pub(crate) fn list_or_none<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The seats of `team`, comma-separated (or `none`).
pub(crate) fn seat_list(team: &Team) -> String {
    list_or_none(
        &team
            .seats
            .iter()
            .map(|s| s.key.as_str())
            .collect::<Vec<_>>(),
    )
}
