//! The list RPCs a login UI calls before a sign-in: zitadel.user.v2.UserService ListUsers and
//! ListAuthenticationMethodTypes, zitadel.org.v2.OrganizationService ListOrganizations. Each
//! converts the search queries to the core's ([`passlink_core::query`]), calls the core and
//! converts the page back; GetUserByID's conversion renders each user.

use std::sync::Arc;

use passlink_core::app::{App, AuthMethod, Caller, Details, OrgSearch, UserSearch};
use passlink_core::error::{Error, Kind, Result};
use passlink_core::query::{OrgFilter, Page, Text, TextMethod, UserField, UserFilter, UserSort};
use passlink_wire::zitadel::object::v2 as obj;
use passlink_wire::zitadel::org::v2 as org_pb;
use passlink_wire::zitadel::user::v2 as pb;

use crate::convert::user_v2 as convert;

/// A search query without a query set (or of a kind passlink does not know).
fn invalid_query() -> Error {
    Error::new(Kind::InvalidArgument, "GRPC-vR9nC", "List.Query.Invalid")
}

fn page(q: Option<&obj::ListQuery>) -> Page {
    q.map(|q| Page { offset: q.offset, limit: q.limit, asc: q.asc }).unwrap_or_default()
}

fn text(value: &str, method: &buffa::EnumValue<obj::TextQueryMethod>) -> Text {
    Text::new(value, TextMethod::from_i32(method.to_i32()))
}

/// The core's filter of one user search query. Nesting is bounded by the protobuf decoder's
/// recursion limit here and by [`passlink_core::query::MAX_NESTING`] in the core.
fn user_filter(q: &pb::SearchQuery) -> Result<UserFilter> {
    use pb::__buffa::oneof::search_query::Query;
    let all = |qs: &[pb::SearchQuery]| qs.iter().map(user_filter).collect::<Result<Vec<_>>>();
    Ok(match q.query.as_ref().ok_or_else(invalid_query)? {
        Query::UserNameQuery(q) => UserFilter::Text(UserField::UserName, text(&q.user_name, &q.method)),
        Query::FirstNameQuery(q) => UserFilter::Text(UserField::FirstName, text(&q.first_name, &q.method)),
        Query::LastNameQuery(q) => UserFilter::Text(UserField::LastName, text(&q.last_name, &q.method)),
        Query::NickNameQuery(q) => UserFilter::Text(UserField::NickName, text(&q.nick_name, &q.method)),
        Query::DisplayNameQuery(q) => {
            UserFilter::Text(UserField::DisplayName, text(&q.display_name, &q.method))
        }
        Query::EmailQuery(q) => UserFilter::Text(UserField::Email, text(&q.email_address, &q.method)),
        Query::PhoneQuery(q) => UserFilter::Text(UserField::Phone, text(&q.number, &q.method)),
        Query::LoginNameQuery(q) => UserFilter::Text(UserField::LoginName, text(&q.login_name, &q.method)),
        Query::StateQuery(q) => UserFilter::State(q.state.to_i32()),
        Query::TypeQuery(q) => UserFilter::Type(q.r#type.to_i32()),
        Query::InUserIdsQuery(q) => UserFilter::Ids(q.user_ids.clone()),
        Query::InUserEmailsQuery(q) => UserFilter::Emails(q.user_emails.clone()),
        Query::OrganizationIdQuery(q) => UserFilter::Org(q.organization_id.clone()),
        Query::OrQuery(q) => UserFilter::Or(all(&q.queries)?),
        Query::AndQuery(q) => UserFilter::And(all(&q.queries)?),
        Query::NotQuery(q) => {
            let inner = q.query.as_option().ok_or_else(invalid_query)?;
            UserFilter::Not(Box::new(user_filter(inner)?))
        }
    })
}

fn org_filter(q: &org_pb::SearchQuery) -> Result<OrgFilter> {
    use org_pb::__buffa::oneof::search_query::Query;
    Ok(match q.query.as_ref().ok_or_else(invalid_query)? {
        Query::NameQuery(q) => OrgFilter::Name(text(&q.name, &q.method)),
        Query::DomainQuery(q) => OrgFilter::Domain(text(&q.domain, &q.method)),
        Query::StateQuery(q) => OrgFilter::State(q.state.to_i32()),
        Query::IdQuery(q) => OrgFilter::Id(q.id.clone()),
        Query::DefaultQuery(_) => OrgFilter::Default,
    })
}

pub async fn list_users(
    app: Arc<App>,
    caller: Caller,
    req: pb::ListUsersRequest,
) -> Result<pb::ListUsersResponse> {
    let search = UserSearch {
        queries: req.queries.iter().map(user_filter).collect::<Result<_>>()?,
        sort: UserSort::from_i32(req.sorting_column.to_i32()),
        page: page(req.query.as_option()),
    };
    let list = app.list_users(&caller, &search).await?;
    Ok(pb::ListUsersResponse {
        details: convert::list_details(list.total as usize, 0, app.now()).into(),
        result: list.users.iter().map(|u| convert::user(&u.user, &u.details)).collect(),
        ..Default::default()
    })
}

pub async fn list_authentication_method_types(
    app: Arc<App>,
    caller: Caller,
    req: pb::ListAuthenticationMethodTypesRequest,
) -> Result<pb::ListAuthenticationMethodTypesResponse> {
    let domain = req.domain_query.as_option().map(|d| d.domain.as_str());
    let methods = app.auth_methods(&caller, &req.user_id, domain).await?;
    Ok(pb::ListAuthenticationMethodTypesResponse {
        details: convert::list_details(methods.len(), 0, app.now()).into(),
        auth_method_types: methods
            .into_iter()
            .map(|m| match m {
                AuthMethod::Passkey => {
                    pb::AuthenticationMethodType::AUTHENTICATION_METHOD_TYPE_PASSKEY.into()
                }
            })
            .collect(),
        ..Default::default()
    })
}

pub async fn list_organizations(
    app: Arc<App>,
    caller: Caller,
    req: org_pb::ListOrganizationsRequest,
) -> Result<org_pb::ListOrganizationsResponse> {
    let search = OrgSearch {
        queries: req.queries.iter().map(org_filter).collect::<Result<_>>()?,
        by_name: req.sorting_column.to_i32() == 1,
        page: page(req.query.as_option()),
    };
    let list = app.list_orgs(&caller, &search).await?;
    Ok(org_pb::ListOrganizationsResponse {
        details: convert::list_details(list.total as usize, 0, app.now()).into(),
        result: list
            .orgs
            .into_iter()
            .map(|o| org_pb::Organization {
                details: convert::details(&Details {
                    sequence: o.sequence,
                    change_date: o.changed_at,
                    resource_owner: o.id.clone(),
                    creation_date: Some(o.created_at),
                })
                .into(),
                id: o.id,
                state: org_pb::OrganizationState::ORGANIZATION_STATE_ACTIVE.into(),
                name: o.name,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(json: &str) -> pb::SearchQuery {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn user_queries_convert_from_zitadels_json() {
        let f = user_filter(&q(
            r#"{"loginNameQuery":{"loginName":"Ada","method":"TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE"}}"#,
        ))
        .unwrap();
        assert_eq!(f, UserFilter::Text(UserField::LoginName, Text::new("Ada", TextMethod::EqualsIgnoreCase)));
        let f = user_filter(&q(
            r#"{"orQuery":{"queries":[{"emailQuery":{"emailAddress":"a@x"}},{"notQuery":{"query":{"typeQuery":{"type":"TYPE_MACHINE"}}}}]}}"#,
        ))
        .unwrap();
        assert_eq!(
            f,
            UserFilter::Or(vec![
                UserFilter::Text(UserField::Email, Text::new("a@x", TextMethod::Equals)),
                UserFilter::Not(Box::new(UserFilter::Type(2))),
            ])
        );
        assert_eq!(
            user_filter(&q(r#"{"organizationIdQuery":{"organizationId":"7"}}"#)).unwrap(),
            UserFilter::Org("7".into())
        );
        assert_eq!(user_filter(&q("{}")).err().map(|e| e.id), Some("GRPC-vR9nC"));
        assert_eq!(user_filter(&q(r#"{"notQuery":{}}"#)).err().map(|e| e.id), Some("GRPC-vR9nC"));
    }

    #[test]
    fn org_queries_convert_from_zitadels_json() {
        let q = |json: &str| org_filter(&serde_json::from_str(json).unwrap());
        assert_eq!(q(r#"{"defaultQuery":{}}"#).unwrap(), OrgFilter::Default);
        assert_eq!(q(r#"{"idQuery":{"id":"9"}}"#).unwrap(), OrgFilter::Id("9".into()));
        assert_eq!(
            q(r#"{"nameQuery":{"name":"ac","method":"TEXT_QUERY_METHOD_STARTS_WITH"}}"#).unwrap(),
            OrgFilter::Name(Text::new("ac", TextMethod::StartsWith))
        );
        assert_eq!(q(r#"{}"#).err().map(|e| e.id), Some("GRPC-vR9nC"));
    }
}
