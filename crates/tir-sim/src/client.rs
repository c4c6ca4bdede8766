//! A small HTTP client for a tirhub server: the exchange's messages and the
//! admin routes, each answer kept as status and raw body.

use serde_json::Value;

use crate::AnyError;

/// Talks to one server at `base` (`http://HOST:PORT`); cheap to clone, the
/// clones share the connection pool.
#[derive(Clone)]
pub struct ExchangeClient {
    http: reqwest::Client,
    base: String,
}

/// A response: status and the raw body text (compared byte for byte on replay).
pub type Answer = (u16, String);

impl ExchangeClient {
    pub fn new(base: &str) -> ExchangeClient {
        ExchangeClient { http: reqwest::Client::new(), base: base.trim_end_matches('/').to_owned() }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn answer(response: reqwest::Response) -> Result<Answer, AnyError> {
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    }

    pub async fn get(&self, token: &str, path: &str) -> Result<Answer, AnyError> {
        Self::answer(self.http.get(format!("{}{path}", self.base)).bearer_auth(token).send().await?).await
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> Result<Answer, AnyError> {
        Self::answer(self.http.post(format!("{}{path}", self.base)).bearer_auth(token).json(body).send().await?).await
    }

    pub async fn put(&self, token: &str, path: &str, body: &Value) -> Result<Answer, AnyError> {
        Self::answer(self.http.put(format!("{}{path}", self.base)).bearer_auth(token).json(body).send().await?).await
    }

    /// `POST /v1/messages`.
    pub async fn send(&self, token: &str, message: &Value) -> Result<Answer, AnyError> {
        self.post(token, "/v1/messages", message).await
    }

    /// Like `post`, but any status other than `expected` is an error.
    pub async fn expect(&self, token: &str, path: &str, body: &Value, expected: u16) -> Result<Value, AnyError> {
        let (status, text) = self.post(token, path, body).await?;
        if status != expected {
            return Err(format!("POST {path}: expected {expected}, got {status}: {text}").into());
        }
        Ok(serde_json::from_str(&text)?)
    }
}

/// Percent-encodes a path segment (a TIR id holds `/`).
pub fn segment(raw: &str) -> String {
    raw.replace('%', "%25").replace('/', "%2F")
}
