//! The words memory search matches on.

use std::collections::BTreeSet;

/// The distinct lower-cased words of `text`: split on non-alphanumerics, shorter than 3 dropped.
pub(crate) fn memory_words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::memory_words;

    #[test]
    fn splits_lowercases_dedups_and_drops_short_words() {
        let words: Vec<_> = memory_words("Use JWT; jwt-tokens expire, so do DB id's.")
            .into_iter()
            .collect();
        assert_eq!(words, ["expire", "jwt", "tokens", "use"]);
    }
}
