//! Fresh PostgreSQL databases: one per test (or bench run), dropped after.

use tokio_postgres::{Client, NoTls};

/// A database created on a PostgreSQL server for one test. Dropped with
/// `WITH (FORCE)`, which also ends connections a stopped server left open.
#[derive(Debug)]
pub struct FreshDatabase {
    server_url: String,
    name: String,
    url: String,
    dropped: bool,
}

pub type PgError = tokio_postgres::Error;

impl FreshDatabase {
    /// A fresh database on the server of `$TIRHUB_TEST_DATABASE_URL`, or `None`
    /// when it is unset, after saying the test was skipped (so a laptop
    /// without PostgreSQL still passes, and says what it did not run).
    pub async fn from_env(prefix: &str) -> Option<FreshDatabase> {
        let Some(server_url) = std::env::var(crate::DATABASE_URL_VAR).ok().filter(|u| !u.is_empty()) else {
            eprintln!("skipped: {} not set", crate::DATABASE_URL_VAR);
            return None;
        };
        let created = FreshDatabase::create(&server_url, prefix).await;
        Some(created.unwrap_or_else(|e| panic!("create a database on {server_url}: {}", detail(&e))))
    }

    /// Creates `<prefix>_<random>` on the server `server_url` names (its own
    /// database part is only where to connect to run CREATE DATABASE).
    pub async fn create(server_url: &str, prefix: &str) -> Result<FreshDatabase, PgError> {
        let name = format!("{prefix}_{}", crate::random_hex(6));
        let client = connect(server_url).await?;
        client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
        let url = with_database(server_url, &name);
        Ok(FreshDatabase { server_url: server_url.to_owned(), name, url, dropped: false })
    }

    /// The URL of the new database, with the server URL's user, host and options.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database now, ending every connection to it, and keeps this
    /// handle: a server still running over it finds its store gone.
    pub async fn drop_under_server(&self) -> Result<(), PgError> {
        drop_database(&self.server_url, &self.name).await
    }

    /// Drops the database now; for callers that can await (the bench).
    pub async fn remove(mut self) -> Result<(), PgError> {
        self.dropped = true;
        drop_database(&self.server_url, &self.name).await
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (server_url, name) = (self.server_url.clone(), self.name.clone());
        // Drop cannot await, and may run on a runtime that cannot block on itself:
        // a thread with a runtime of its own can.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(drop_database(&server_url, &name))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("test database {} was not dropped: {dropped:?}", self.name);
        }
    }
}

async fn drop_database(server_url: &str, name: &str) -> Result<(), PgError> {
    connect(server_url).await?.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await
}

/// A client whose connection runs on the current runtime.
pub async fn connect(url: &str) -> Result<Client, PgError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// tokio-postgres prints only "db error"; the server's message is what helps.
pub fn detail(e: &PgError) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// `postgres://u@h:p/db?x` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (main, query) = match url.split_once('?') {
        Some((main, query)) => (main, Some(query)),
        None => (url, None),
    };
    let authority = main.find("://").map_or(0, |i| i + 3);
    let path = main[authority..].find('/').map_or(main.len(), |i| authority + i);
    let mut out = format!("{}/{name}", &main[..path]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_part_of_a_url_is_replaced_and_the_rest_kept() {
        assert_eq!(with_database("postgres://u@h:5432/test", "t1"), "postgres://u@h:5432/t1");
        assert_eq!(with_database("postgres://u@h:5432", "t1"), "postgres://u@h:5432/t1");
        assert_eq!(with_database("postgres://u@h/test?sslmode=disable", "t1"), "postgres://u@h/t1?sslmode=disable");
    }

    #[tokio::test]
    async fn a_fresh_database_is_reachable_and_gone_after_drop() {
        let Some(db) = FreshDatabase::from_env("tirhub_testkit").await else { return };
        let client = connect(db.url()).await.expect("the new database is reachable");
        let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
        assert_eq!(one, 1);
        drop(client);
        let (server_url, name) = (std::env::var(crate::DATABASE_URL_VAR).unwrap(), db.name().to_owned());
        drop(db);
        let server = connect(&server_url).await.unwrap();
        let left = server.query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name]).await.unwrap();
        assert!(left.is_empty(), "{name} is still there");
    }
}
