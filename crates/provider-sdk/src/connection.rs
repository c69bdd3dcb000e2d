//! Connection details every DBaaS backend writes the same way.

/// A PostgreSQL connection string in libpq's keyword/value form
/// (`host=… port=… user=… password=… dbname=…`), as Dapr's
/// `state.postgresql` store and `psql` both read it. Values that need it
/// are quoted the libpq way: in single quotes, with `\` and `'` escaped.
/// Dapr splits on spaces before it parses, so a value with a space works
/// with psql only; generated passwords have none.
pub fn postgres_keywords(
    host: &str,
    port: u16,
    user: &str,
    password: Option<&str>,
    dbname: &str,
    sslmode: Option<&str>,
) -> String {
    let quote = |v: &str| {
        if !v.is_empty()
            && !v
                .chars()
                .any(|c| c.is_whitespace() || c == '\'' || c == '\\')
        {
            return v.to_string();
        }
        let escaped = v.replace('\\', "\\\\").replace('\'', "\\'");
        format!("'{escaped}'")
    };
    let port = port.to_string();
    let mut pairs = vec![("host", host), ("port", port.as_str()), ("user", user)];
    if let Some(password) = password {
        pairs.push(("password", password));
    }
    pairs.push(("dbname", dbname));
    if let Some(mode) = sslmode {
        pairs.push(("sslmode", mode));
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", quote(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_quoted_only_where_libpq_needs_it() {
        assert_eq!(
            postgres_keywords("127.0.0.1", 5432, "app", Some("s3cret"), "app", None),
            "host=127.0.0.1 port=5432 user=app password=s3cret dbname=app"
        );
        assert_eq!(
            postgres_keywords(
                "db",
                5432,
                "app",
                Some("it's a \\ pw"),
                "app",
                Some("require")
            ),
            "host=db port=5432 user=app password='it\\'s a \\\\ pw' dbname=app sslmode=require"
        );
        assert_eq!(
            postgres_keywords("db", 1, "u", Some(""), "d", None),
            "host=db port=1 user=u password='' dbname=d",
            "an empty value is quoted, not dropped"
        );
    }
}
