//! Wire ↔ domain conversions, each written once.
//!
//! - [`timestamp`] / [`from_timestamp`]: `google.protobuf.Timestamp` ↔ the core's
//!   [`Timestamp`].
//! - [`user_v2beta`] and [`user_v2`]: ZITADEL declares the same user and object messages in both
//!   versions (distinct Rust types), so their conversions are written once, in the
//!   `user_package!` macro below, and expanded for each package:
//!   - `details`: the core's `app::Details` → `object.Details`; `list_details` for list responses;
//!   - `human_profile`: `SetHumanProfile` + `SetHumanEmail` + `SetHumanPhone` → the profile
//!     (the core's `event::HumanProfile`), email and phone with their verification exactly as
//!     the caller sent them;
//!   - `org_id`: `object.Organization` → the organization id (or domain) it names;
//!   - `user`: a user read model → `User`.

use buffa_types::google::protobuf::Timestamp as PbTimestamp;
use passlink_core::time::Timestamp;

pub fn timestamp(t: Timestamp) -> PbTimestamp {
    let (s, n) = t.secs_nanos();
    PbTimestamp::from_unix(s, n)
}

pub fn from_timestamp(t: &PbTimestamp) -> Timestamp {
    Timestamp(t.seconds.saturating_mul(1_000_000_000).saturating_add(i64::from(t.nanos)))
}

/// The conversions of one user package; expects `pb` (the user package) and `obj` (its object
/// package) in scope where it is expanded.
macro_rules! user_package {
    () => {
        use passlink_core::app::Details;
        use passlink_core::event::HumanProfile;
        use passlink_core::time::Timestamp;
        use passlink_core::view::{UserKind, UserState, UserView};

        use crate::convert::timestamp;

        pub fn details(d: &Details) -> obj::Details {
            obj::Details {
                sequence: d.sequence,
                change_date: timestamp(d.change_date).into(),
                resource_owner: d.resource_owner.clone(),
                creation_date: d.creation_date.map(timestamp).into(),
                ..Default::default()
            }
        }

        pub fn list_details(total: usize, processed_sequence: u64, now: Timestamp) -> obj::ListDetails {
            obj::ListDetails {
                total_result: total as u64,
                processed_sequence,
                timestamp: timestamp(now).into(),
                ..Default::default()
            }
        }

        /// The profile of a new human user. Absent messages count as empty (the handlers check
        /// which ones are required).
        pub fn human_profile(
            profile: Option<&pb::SetHumanProfile>,
            email: Option<&pb::SetHumanEmail>,
            phone: Option<&pb::SetHumanPhone>,
        ) -> HumanProfile {
            use pb::__buffa::oneof::{set_human_email, set_human_phone};
            let p = profile.cloned().unwrap_or_default();
            let e = email.cloned().unwrap_or_default();
            let phone = phone.cloned().unwrap_or_default();
            HumanProfile {
                given_name: p.given_name,
                family_name: p.family_name,
                nick_name: p.nick_name.unwrap_or_default(),
                display_name: p.display_name.unwrap_or_default(),
                preferred_language: p.preferred_language.unwrap_or_default(),
                gender: p.gender.map(|g| g.to_i32()).unwrap_or_default(),
                email: e.email,
                email_verified: matches!(
                    e.verification,
                    Some(set_human_email::Verification::IsVerified(true))
                ),
                phone: phone.phone,
                phone_verified: matches!(
                    phone.verification,
                    Some(set_human_phone::Verification::IsVerified(true))
                ),
            }
        }

        /// The organization an `Organization` names: its id or its domain.
        pub fn org_id(o: Option<&obj::Organization>) -> Option<String> {
            use obj::__buffa::oneof::organization::Org;
            match o?.org.as_ref()? {
                Org::OrgId(id) => Some(id.clone()),
                Org::OrgDomain(d) => Some(d.clone()),
            }
        }

        fn user_state(s: UserState) -> pb::UserState {
            match s {
                UserState::Active => pb::UserState::USER_STATE_ACTIVE,
                UserState::Inactive => pb::UserState::USER_STATE_INACTIVE,
                UserState::Deleted => pb::UserState::USER_STATE_DELETED,
            }
        }

        pub fn user(u: &UserView, d: &Details) -> pb::User {
            let state = user_state(u.state);
            let login_names = vec![u.username.clone()];
            let kind = match &u.kind {
                UserKind::Human(h) => pb::__buffa::oneof::user::Type::Human(Box::new(pb::HumanUser {
                    user_id: u.id.clone(),
                    state: state.into(),
                    username: u.username.clone(),
                    login_names: login_names.clone(),
                    preferred_login_name: u.username.clone(),
                    profile: pb::HumanProfile {
                        given_name: h.given_name.clone(),
                        family_name: h.family_name.clone(),
                        nick_name: Some(h.nick_name.clone()),
                        display_name: Some(h.effective_display_name()),
                        preferred_language: Some(h.preferred_language.clone()),
                        gender: Some(h.gender.into()),
                        ..Default::default()
                    }
                    .into(),
                    email: pb::HumanEmail {
                        email: h.email.clone(),
                        is_verified: h.email_verified,
                        ..Default::default()
                    }
                    .into(),
                    phone: pb::HumanPhone {
                        phone: h.phone.clone(),
                        is_verified: h.phone_verified,
                        ..Default::default()
                    }
                    .into(),
                    ..Default::default()
                })),
                UserKind::Machine(m) => pb::__buffa::oneof::user::Type::Machine(Box::new(pb::MachineUser {
                    name: m.name.clone(),
                    description: m.description.clone(),
                    access_token_type: m.access_token_type.into(),
                    has_secret: !m.secret_hash.is_empty(),
                    ..Default::default()
                })),
            };
            pb::User {
                user_id: u.id.clone(),
                details: details(d).into(),
                state: state.into(),
                username: u.username.clone(),
                login_names,
                preferred_login_name: u.username.clone(),
                r#type: Some(kind),
                ..Default::default()
            }
        }
    };
}

/// zitadel.user.v2beta with zitadel.object.v2beta.
pub mod user_v2beta {
    use passlink_wire::zitadel::object::v2beta as obj;
    use passlink_wire::zitadel::user::v2beta as pb;
    user_package!();
}

/// zitadel.user.v2 with zitadel.object.v2.
pub mod user_v2 {
    use passlink_wire::zitadel::object::v2 as obj;
    use passlink_wire::zitadel::user::v2 as pb;
    user_package!();
}

#[cfg(test)]
mod tests {
    use passlink_wire::zitadel::user::v2 as pb;
    use passlink_wire::zitadel::user::v2::__buffa::oneof::{set_human_email, set_human_phone};

    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let t = Timestamp(1_735_725_600_123_456_789);
        assert_eq!(from_timestamp(&timestamp(t)), t);
    }

    #[test]
    fn the_human_profile_keeps_email_phone_and_their_verification() {
        let profile = pb::SetHumanProfile {
            given_name: "Ada".into(),
            family_name: "Lovelace".into(),
            preferred_language: Some("de".into()),
            ..Default::default()
        };
        let email = pb::SetHumanEmail {
            email: "ada@example.com".into(),
            verification: Some(set_human_email::Verification::IsVerified(true)),
            ..Default::default()
        };
        let phone = pb::SetHumanPhone {
            phone: "+41 79 000 00 00".into(),
            verification: Some(set_human_phone::Verification::IsVerified(true)),
            ..Default::default()
        };
        let h = user_v2::human_profile(Some(&profile), Some(&email), Some(&phone));
        assert_eq!((h.given_name.as_str(), h.preferred_language.as_str()), ("Ada", "de"));
        assert!(h.email_verified && h.phone_verified);
        assert_eq!(h.phone, "+41 79 000 00 00");
        let h = user_v2::human_profile(Some(&profile), Some(&email), None);
        assert!(h.phone.is_empty() && !h.phone_verified);
    }
}
