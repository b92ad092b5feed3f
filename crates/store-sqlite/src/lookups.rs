//! The reads of the list RPCs: candidate users of a [`UserNarrowing`] (through the primary key,
//! the `username` and the `org_id` indexes) and every organization.

use passlink_core::query::UserNarrowing;
use rusqlite::Connection;

use crate::json;

/// `SELECT` of the users a narrowing admits, with its parameters: each constrained dimension
/// becomes `col IN (?, ...)`, an empty one admits nothing.
fn users_sql(n: &UserNarrowing) -> (String, Vec<String>) {
    let mut sql = format!("{} WHERE 1 = 1", crate::users::SELECT);
    let mut args = Vec::new();
    for (col, values) in [("id", &n.ids), ("username", &n.usernames), ("org_id", &n.org_ids)] {
        match values {
            None => {}
            Some(v) if v.is_empty() => sql.push_str(" AND 0"),
            Some(v) => {
                sql.push_str(&format!(" AND u.{col} IN ({})", vec!["?"; v.len()].join(", ")));
                args.extend(v.iter().cloned());
            }
        }
    }
    (sql, args)
}

pub(crate) fn users_matching(
    c: &Connection,
    n: &UserNarrowing,
) -> rusqlite::Result<Vec<passlink_core::view::UserView>> {
    let (sql, args) = users_sql(n);
    let mut st = c.prepare_cached(&sql)?;
    let rows = st.query_map(rusqlite::params_from_iter(args.iter()), crate::users::from_row)?;
    rows.collect()
}

/// A page of an organization's users in id order (byte order: SQLite's BINARY collation).
pub(crate) fn org_users_after(
    c: &Connection,
    org_id: &str,
    after: &str,
    limit: usize,
) -> rusqlite::Result<Vec<passlink_core::view::UserView>> {
    let sql = format!("{} WHERE u.org_id = ?1 AND u.id > ?2 ORDER BY u.id LIMIT ?3", crate::users::SELECT);
    let mut st = c.prepare_cached(&sql)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = st.query_map(rusqlite::params![org_id, after, limit], crate::users::from_row)?;
    rows.collect()
}

pub(crate) fn orgs(c: &Connection) -> rusqlite::Result<Vec<passlink_core::view::OrgView>> {
    let mut st = c.prepare_cached("SELECT data FROM orgs")?;
    let rows = st.query_map([], |r| json(&r.get::<_, String>(0)?))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dimension_is_an_in_list_and_an_empty_one_admits_nothing() {
        let n =
            UserNarrowing { ids: Some(vec!["1".into(), "2".into()]), usernames: None, org_ids: Some(vec![]) };
        let (sql, args) = users_sql(&n);
        let select = crate::users::SELECT;
        assert_eq!(sql, format!("{select} WHERE 1 = 1 AND u.id IN (?, ?) AND 0"));
        assert_eq!(args, ["1", "2"]);
        assert_eq!(users_sql(&UserNarrowing::default()).0, format!("{select} WHERE 1 = 1"));
    }
}
