//! Bearer-token authentication. Tokens are looked up by their SHA-256 hash,
//! and found parties are cached for a few seconds: a revocation on this server
//! clears its entry at once, one on another server sharing the database is
//! seen here when the entry expires. A handler says who may call it with an
//! extractor: `AnyParty` or `Admin`. Both then spend one token of the party's
//! rate limit (429/386), before the handler reads the body: 390 answers
//! first, then 386, then 380 (a party on an admin route) and the body's codes.
//! A party bound to a client certificate (mutual TLS) is authenticated only
//! when the connection presented that certificate: its token alone gets 390.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use tir_model::party::Party;
use tir_model::{ErrorCode, EtirError};
use tir_store::{Store, TokenParty, token};

use crate::App;
use crate::error::ApiError;
use crate::tls::PeerCertificate;

/// Cached parties before the cache is cleared (bounds memory).
const CACHED_PARTIES_MAX: usize = 100_000;
/// How long a revocation by another server may take to reach this one.
const PARTY_CACHE_TTL: Duration = Duration::from_secs(5);

pub struct Parties {
    store: Arc<dyn Store>,
    admin_token_hash: String,
    /// Token hash → the party, its certificate binding, and when they were read from the store.
    cache: RwLock<HashMap<String, (TokenParty, Instant)>>,
    cache_ttl: Duration,
}

impl Parties {
    pub fn new(store: Arc<dyn Store>, admin_token: &str) -> Parties {
        Parties {
            store,
            admin_token_hash: token::hash(admin_token),
            cache: RwLock::new(HashMap::new()),
            cache_ttl: PARTY_CACHE_TTL,
        }
    }

    /// The party behind the request's bearer token: 401/390 when missing, unknown or given twice,
    /// or when the party is bound to a client certificate and `peer` (the certificate the
    /// connection presented) is not that one.
    pub async fn authenticate(&self, headers: &HeaderMap, peer: Option<&PeerCertificate>) -> Result<Party, ApiError> {
        let unauthenticated = || ApiError::code(ErrorCode::Unauthenticated, "");
        let mut values = headers.get_all(axum::http::header::AUTHORIZATION).iter();
        // More than one Authorization header is refused like a missing one.
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(unauthenticated());
        };
        let value = value.to_str().map_err(|_| unauthenticated())?;
        let bearer =
            value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).ok_or_else(unauthenticated)?;
        self.authenticate_hash(&token::hash(bearer.trim()), peer).await
    }

    /// As `authenticate`, from the SHA-256 (hex) of the token: what the console's sessions keep.
    pub async fn authenticate_hash(&self, hash: &str, peer: Option<&PeerCertificate>) -> Result<Party, ApiError> {
        let unauthenticated = || ApiError::code(ErrorCode::Unauthenticated, "");
        if hash == self.admin_token_hash {
            return Ok(Party::Admin);
        }
        let cached = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
            .and_then(|(found, read_at)| (read_at.elapsed() < self.cache_ttl).then(|| found.clone()));
        let found = match cached {
            Some(found) => found,
            None => {
                let found = self.store.token_party(hash).await?.ok_or_else(unauthenticated)?;
                let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
                // An expired entry is replaced; only a new one may overflow the cache.
                if cache.len() >= CACHED_PARTIES_MAX && !cache.contains_key(hash) {
                    cache.clear();
                }
                cache.insert(hash.to_owned(), (found.clone(), Instant::now()));
                found
            }
        };
        if let Some(bound) = &found.certificate_sha256
            && peer.is_none_or(|presented| *presented.0 != **bound)
        {
            return Err(ApiError::Etir(EtirError::new(ErrorCode::Unauthenticated, "").with_detail(
                "this party is bound to a client certificate: the connection did not present it (mutual TLS)",
            )));
        }
        Ok(found.party)
    }

    /// Drops the cached entry of party `id` (revoked, or its certificate binding changed).
    pub fn forget(&self, id: &str) {
        self.cache.write().unwrap_or_else(|e| e.into_inner()).retain(|_, (found, _)| found.party.id() != id);
    }
}

/// Any authenticated party, the admin included: 401/390 when the token is missing or unknown.
/// Whether the party may do what it asks is the model's decision (`exchange`).
pub struct AnyParty(pub Party);

impl FromRequestParts<App> for AnyParty {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let party = app.parties.authenticate(&parts.headers, parts.extensions.get()).await?;
        crate::observe::note_party(&parts.extensions, party.kind());
        app.limiter.admit(&party)?;
        Ok(AnyParty(party))
    }
}

/// The admin: 401/390 without a known token, 403/380 for any other party.
pub struct Admin;

impl FromRequestParts<App> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let party = app.parties.authenticate(&parts.headers, parts.extensions.get()).await?;
        crate::observe::note_party(&parts.extensions, party.kind());
        Admin::admit(app, &party)
    }
}

impl Admin {
    /// The checks after authentication: the party's rate limit, then 403/380 for any other party.
    /// Also run by `direct` for a party the console authenticated.
    pub(crate) fn admit(app: &App, party: &Party) -> Result<Admin, ApiError> {
        app.limiter.admit(party)?;
        match party {
            Party::Admin => Ok(Admin),
            _ => Err(ApiError::code(ErrorCode::PartyNotAuthorized, "")),
        }
    }
}

/// Customs of one administration: 401/390 without a known token, 403/380 for any
/// other party (holders, guarantee chains, the admin). Carries the party's id and country.
pub struct Customs {
    pub id: String,
    pub country: tir_model::Country,
}

impl FromRequestParts<App> for Customs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let party = app.parties.authenticate(&parts.headers, parts.extensions.get()).await?;
        crate::observe::note_party(&parts.extensions, party.kind());
        Customs::admit(app, party)
    }
}

impl Customs {
    /// As `Admin::admit`, for customs.
    pub(crate) fn admit(app: &App, party: Party) -> Result<Customs, ApiError> {
        app.limiter.admit(&party)?;
        match party {
            Party::Customs { id, country } => Ok(Customs { id, country }),
            _ => Err(ApiError::code(ErrorCode::PartyNotAuthorized, "")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tir_model::party::PartyKind;
    use tir_store::NewParty;

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(axum::http::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        headers
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revocation_by_another_server_is_seen_once_the_cached_entry_expires() {
        let dir = std::env::temp_dir().join(format!("tirhub-auth-{}", token::random_hex(6)));
        std::fs::create_dir_all(&dir).unwrap();
        let store = tir_store::open(&format!("sqlite://{}", dir.join("t.db").display())).await.unwrap();
        let secret = token::generate();
        let party = NewParty {
            id: "gc_1".into(),
            kind: PartyKind::GuaranteeChain,
            name: "Chain".into(),
            country: None,
            tir_id: None,
            token_hash: token::hash(&secret),
        };
        store.create_party(party).await.unwrap();
        let mut parties = Parties::new(store.clone(), "admin-token-of-the-test");
        parties.cache_ttl = Duration::from_secs(3600);

        assert_eq!(parties.authenticate(&bearer(&secret), None).await.unwrap().id(), "gc_1");
        // Revoked in the store directly, as another server would: this one has it cached.
        assert_eq!(store.revoke_party("gc_1").await.unwrap().status, 200);
        assert!(parties.authenticate(&bearer(&secret), None).await.is_ok(), "still cached");
        // The entry's time is up (no sleeping: the TTL shrinks instead).
        parties.cache_ttl = Duration::ZERO;
        let err = parties.authenticate(&bearer(&secret), None).await.unwrap_err();
        assert!(matches!(err, ApiError::Etir(ref e) if e.code == ErrorCode::Unauthenticated), "{err:?}");
        drop(parties);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
}
