//! Database URLs as messages show them.

/// `url` with its password replaced by `***`: a message, a log line or `orket workers` never
/// shows it.
pub fn url_without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::url_without_password;

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(
            url_without_password("postgres://orket:s3cret@db.local:5432/orket"),
            "postgres://orket:***@db.local:5432/orket"
        );
        assert_eq!(
            url_without_password("postgres://orket@127.0.0.1/orket"),
            "postgres://orket@127.0.0.1/orket"
        );
        assert_eq!(
            url_without_password("postgres://u:p@ss@h/d?sslmode=disable"),
            "postgres://u:***@h/d?sslmode=disable"
        );
        assert_eq!(
            url_without_password("/var/lib/orket.db"),
            "/var/lib/orket.db"
        );
    }
}
