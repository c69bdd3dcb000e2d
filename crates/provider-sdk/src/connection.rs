//! Connection details every DBaaS backend writes the same way.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::ConnectionDetails;

/// What RFC 3986 lets stand unencoded in a URI's userinfo, of the characters
/// a user name or generated password may have.
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Where a database is and as whom to reach it.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    /// `postgresql`, `mysql` or `sqlserver`: the URI scheme.
    pub scheme: &'a str,
    /// None until the cloud has given the database an address.
    pub host: Option<&'a str>,
    pub port: u16,
    pub username: &'a str,
    pub password: Option<&'a str>,
    pub database: &'a str,
    /// libpq's sslmode for the keyword form, e.g. `require`.
    pub sslmode: Option<&'a str>,
}

/// The keys every DBaaS backend's connection Secret carries: `host`, `port`,
/// `username`, `password`, `database` and `uri`, plus `connectionString`
/// (libpq's keyword form, for Dapr) for PostgreSQL. Before the database has
/// an address, what is known already: no `host`, `uri` or
/// `connectionString`.
pub fn database_details(endpoint: &Endpoint) -> ConnectionDetails {
    let Endpoint {
        scheme,
        host,
        port,
        username,
        password,
        database,
        sslmode,
    } = *endpoint;
    let mut details = ConnectionDetails::new();
    details.insert("port".into(), port.to_string().into_bytes());
    details.insert("username".into(), username.as_bytes().to_vec());
    details.insert("database".into(), database.as_bytes().to_vec());
    if let Some(p) = password {
        details.insert("password".into(), p.as_bytes().to_vec());
    }
    let Some(host) = host else {
        return details;
    };
    details.insert("host".into(), host.as_bytes().to_vec());
    let user = utf8_percent_encode(username, USERINFO);
    let userinfo = match password {
        Some(p) => format!("{user}:{}", utf8_percent_encode(p, USERINFO)),
        None => user.to_string(),
    };
    let uri = format!("{scheme}://{userinfo}@{host}:{port}/{database}");
    details.insert("uri".into(), uri.into_bytes());
    if scheme == "postgresql" {
        let keywords = postgres_keywords(host, port, username, password, database, sslmode);
        details.insert("connectionString".into(), keywords.into_bytes());
    }
    details
}

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
    fn database_details_carry_every_key_with_the_password_encoded_in_the_uri() {
        let details = database_details(&Endpoint {
            scheme: "postgresql",
            host: Some("10.0.0.3"),
            port: 5432,
            username: "postgres",
            password: Some("p@ss/word"),
            database: "postgres",
            sslmode: Some("require"),
        });
        let text = |k: &str| String::from_utf8_lossy(&details[k]).to_string();
        assert_eq!(
            text("uri"),
            "postgresql://postgres:p%40ss%2Fword@10.0.0.3:5432/postgres"
        );
        assert_eq!(text("port"), "5432");
        assert_eq!(text("password"), "p@ss/word");
        assert_eq!(
            text("connectionString"),
            "host=10.0.0.3 port=5432 user=postgres password=p@ss/word dbname=postgres sslmode=require"
        );
        let mysql = database_details(&Endpoint {
            scheme: "mysql",
            password: None,
            ..Endpoint {
                scheme: "",
                host: Some("h"),
                port: 3306,
                username: "root",
                password: None,
                database: "app",
                sslmode: None,
            }
        });
        assert!(!mysql.contains_key("password") && !mysql.contains_key("connectionString"));
        assert_eq!(
            String::from_utf8_lossy(&mysql["uri"]),
            "mysql://root@h:3306/app"
        );
    }

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
