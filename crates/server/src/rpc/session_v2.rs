//! zitadel.session.v2.SessionService: CreateSession, SetSession, GetSession, ListSessions,
//! DeleteSession. Each handler converts the request into the core's session types, calls the
//! core's `sessions` use cases and renders the session as ZITADEL does (protojson: a factor
//! object only when its check time is set; `factors` absent without a checked user).

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use passlink_core::app::{
    App, Caller, ChallengeRequest, DateMethod, SessionChange, SessionList, SessionQuery, SessionWritten,
    UserCheck, query_invalid,
};
use passlink_core::error::{Error, Result};
use passlink_core::secret::Secret;
use passlink_core::session::{SessionView, UserAgent};
use passlink_core::validate;
use passlink_wire::zitadel::object::v2 as obj;
use passlink_wire::zitadel::session::v2 as pb;
use passlink_wire::zitadel::session::v2::__buffa::oneof::check_user::Search;
use passlink_wire::zitadel::session::v2::__buffa::oneof::search_query::Query;

use crate::convert::timestamp;
use crate::convert::user_v2::details;

fn user_agent(a: Option<&pb::UserAgent>) -> Option<UserAgent> {
    let a = a?;
    Some(UserAgent {
        fingerprint_id: a.fingerprint_id.clone(),
        ip: a.ip.clone(),
        description: a.description.clone(),
        header: a.header.iter().map(|(k, v)| (k.clone(), v.values.clone())).collect(),
    })
}

fn user_agent_pb(a: &UserAgent) -> pb::UserAgent {
    pb::UserAgent {
        fingerprint_id: a.fingerprint_id.clone(),
        ip: a.ip.clone(),
        description: a.description.clone(),
        header: a
            .header
            .iter()
            .map(|(k, v)| {
                (k.clone(), pb::user_agent::HeaderValues { values: v.clone(), ..Default::default() })
            })
            .collect(),
        ..Default::default()
    }
}

/// The checks, metadata, challenges and lifetime of a Create/SetSession request.
fn change(
    msg: &str,
    checks: Option<&pb::Checks>,
    metadata: &buffa::__private::HashMap<String, Vec<u8>>,
    challenges: Option<&pb::RequestChallenges>,
    lifetime: Option<&buffa_types::google::protobuf::Duration>,
) -> Result<SessionChange> {
    let user = match checks.and_then(|c| c.user.as_option()).and_then(|u| u.search.as_ref()) {
        Some(Search::UserId(id)) => Some(UserCheck::Id(id.clone())),
        Some(Search::LoginName(name)) => Some(UserCheck::LoginName(name.clone())),
        None => None,
    };
    let assertion = match checks.and_then(|c| c.web_auth_n.as_option()) {
        Some(w) => match w.credential_assertion_data.as_option() {
            Some(data) => Some(serde_json::to_value(data).map_err(Error::internal)?),
            None => {
                return Err(validate::embedded(
                    msg,
                    "Checks",
                    validate::embedded(
                        "Checks",
                        "WebAuthN",
                        validate::required("CheckWebAuthN", "CredentialAssertionData"),
                    ),
                ));
            }
        },
        None => None,
    };
    let challenge = challenges.and_then(|c| c.web_auth_n.as_option()).map(|w| ChallengeRequest {
        domain: w.domain.clone(),
        user_verification: w.user_verification_requirement.to_i32(),
    });
    Ok(SessionChange {
        user,
        assertion,
        challenge,
        metadata: metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<BTreeMap<_, _>>(),
        lifetime: lifetime.map(|d| d.seconds),
        user_agent: None,
    })
}

fn challenges(w: &SessionWritten) -> Result<Option<pb::Challenges>> {
    let Some(options) = &w.challenge else { return Ok(None) };
    let options: buffa_types::google::protobuf::Struct =
        serde_json::from_value(options.clone()).map_err(Error::internal)?;
    Ok(Some(pb::Challenges {
        web_auth_n: pb::challenges::WebAuthN {
            public_key_credential_request_options: options.into(),
            ..Default::default()
        }
        .into(),
        ..Default::default()
    }))
}

/// A session as ZITADEL renders it.
pub fn session(s: &SessionView) -> pb::Session {
    let factors = s.user.as_ref().map(|u| pb::Factors {
        user: pb::UserFactor {
            verified_at: timestamp(u.checked_at).into(),
            id: u.user_id.clone(),
            login_name: u.login_name.clone(),
            display_name: u.display_name.clone(),
            organization_id: u.org_id.clone(),
            ..Default::default()
        }
        .into(),
        web_auth_n: s
            .webauthn
            .as_ref()
            .map(|w| pb::WebAuthNFactor {
                verified_at: timestamp(w.checked_at).into(),
                user_verified: w.user_verified,
                ..Default::default()
            })
            .into(),
        ..Default::default()
    });
    pb::Session {
        id: s.id.clone(),
        creation_date: timestamp(s.created_at).into(),
        change_date: timestamp(s.changed_at).into(),
        sequence: s.sequence,
        factors: factors.into(),
        metadata: s
            .metadata
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), STANDARD.decode(v).ok()?)))
            .collect(),
        user_agent: s.user_agent.as_ref().map(user_agent_pb).into(),
        expiration_date: s.expiration.map(timestamp).into(),
        ..Default::default()
    }
}

fn token(t: Option<&String>) -> Option<Secret> {
    t.filter(|t| !t.is_empty()).map(|t| Secret::new(t.clone()))
}

/// Rate-limit targets of CreateSession: the user its checks name.
pub fn create_session_targets(req: &pb::CreateSessionRequest) -> Vec<String> {
    match req.checks.as_option().and_then(|c| c.user.as_option()).and_then(|u| u.search.as_ref()) {
        Some(Search::UserId(id)) => vec![format!("user:{id}")],
        Some(Search::LoginName(name)) => vec![format!("login:{}", name.to_lowercase())],
        None => vec![],
    }
}

/// Rate-limit targets of SetSession: the session.
pub fn set_session_targets(req: &pb::SetSessionRequest) -> Vec<String> {
    vec![format!("session:{}", req.session_id)]
}

pub async fn create_session(
    app: Arc<App>,
    caller: Caller,
    req: pb::CreateSessionRequest,
) -> Result<pb::CreateSessionResponse> {
    let mut c = change(
        "CreateSessionRequest",
        req.checks.as_option(),
        &req.metadata,
        req.challenges.as_option(),
        req.lifetime.as_option(),
    )?;
    c.user_agent = user_agent(req.user_agent.as_option());
    let w = app.create_session(&caller, c).await?;
    Ok(pb::CreateSessionResponse {
        details: details(&w.details).into(),
        session_id: w.session_id.clone(),
        session_token: w.token.as_ref().map(|t| t.expose().to_string()).unwrap_or_default(),
        challenges: challenges(&w)?.into(),
        ..Default::default()
    })
}

pub async fn set_session(
    app: Arc<App>,
    caller: Caller,
    req: pb::SetSessionRequest,
) -> Result<pb::SetSessionResponse> {
    let c = change(
        "SetSessionRequest",
        req.checks.as_option(),
        &req.metadata,
        req.challenges.as_option(),
        req.lifetime.as_option(),
    )?;
    let w = app.set_session(&caller, &req.session_id, c).await?;
    Ok(pb::SetSessionResponse {
        details: details(&w.details).into(),
        session_token: w.token.as_ref().map(|t| t.expose().to_string()).unwrap_or_default(),
        challenges: challenges(&w)?.into(),
        ..Default::default()
    })
}

pub async fn get_session(
    app: Arc<App>,
    caller: Caller,
    req: pb::GetSessionRequest,
) -> Result<pb::GetSessionResponse> {
    let s = app.get_session(&caller, &req.session_id, token(req.session_token.as_ref()).as_ref()).await?;
    Ok(pb::GetSessionResponse { session: session(&s).into(), ..Default::default() })
}

fn date_method(m: i32) -> Result<DateMethod> {
    Ok(match m {
        0 => DateMethod::Equals,
        1 => DateMethod::Greater,
        2 => DateMethod::GreaterOrEquals,
        3 => DateMethod::Less,
        4 => DateMethod::LessOrEquals,
        _ => return Err(query_invalid()),
    })
}

pub async fn list_sessions(
    app: Arc<App>,
    caller: Caller,
    req: pb::ListSessionsRequest,
) -> Result<pb::ListSessionsResponse> {
    let mut queries = Vec::with_capacity(req.queries.len());
    for q in &req.queries {
        queries.push(match q.query.as_ref().ok_or_else(query_invalid)? {
            Query::IdsQuery(q) => SessionQuery::Ids(q.ids.clone()),
            Query::UserIdQuery(q) => SessionQuery::UserId(q.id.clone()),
            Query::CreationDateQuery(q) => {
                let at = q.creation_date.as_option().map(crate::convert::from_timestamp).unwrap_or_default();
                SessionQuery::CreationDate(at, date_method(q.method.to_i32())?)
            }
            Query::CreatorQuery(q) => SessionQuery::Creator(q.id.clone().filter(|i| !i.is_empty())),
            Query::UserAgentQuery(q) => {
                SessionQuery::UserAgent(q.fingerprint_id.clone().filter(|i| !i.is_empty()))
            }
        });
    }
    let paging = req.query.as_option();
    let list = SessionList {
        queries,
        offset: paging.map_or(0, |p| p.offset),
        limit: paging.map_or(0, |p| u64::from(p.limit)),
        asc: paging.is_some_and(|p| p.asc),
        sort_by_creation: req.sorting_column.to_i32() == 1,
    };
    let (rows, total) = app.list_sessions(&caller, &list).await?;
    let processed = rows.iter().map(|s| s.sequence).max().unwrap_or_default();
    Ok(pb::ListSessionsResponse {
        details: obj::ListDetails {
            total_result: total,
            processed_sequence: processed,
            timestamp: timestamp(app.now()).into(),
            ..Default::default()
        }
        .into(),
        sessions: rows.iter().map(session).collect(),
        ..Default::default()
    })
}

pub async fn delete_session(
    app: Arc<App>,
    caller: Caller,
    req: pb::DeleteSessionRequest,
) -> Result<pb::DeleteSessionResponse> {
    let d = app.delete_session(&caller, &req.session_id, token(req.session_token.as_ref()).as_ref()).await?;
    Ok(pb::DeleteSessionResponse { details: details(&d).into(), ..Default::default() })
}
