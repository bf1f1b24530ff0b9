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

/// `url` naming the database `name` instead of its own (the query is kept): the tests and the
/// benchmark create databases of their own on one server.
pub fn url_with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[host_start..]
        .find('/')
        .map_or(base.len(), |i| host_start + i);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{}/{name}{query}", &base[..host_end])
}

#[cfg(test)]
mod tests {
    use super::{url_with_database, url_without_password};

    #[test]
    fn a_url_names_another_database_keeping_its_query() {
        assert_eq!(
            url_with_database("postgres://o@h:1/postgres?sslmode=disable", "t1"),
            "postgres://o@h:1/t1?sslmode=disable"
        );
        assert_eq!(
            url_with_database("postgres://o@h:1", "t2"),
            "postgres://o@h:1/t2"
        );
    }

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
