//! The reads of the list RPCs: the SQL of the candidate users of a [`UserNarrowing`] (through
//! the primary key, the `lower(username)` and the `org_id` indexes).

use passlink_core::query::UserNarrowing;

/// `SELECT` of the users a narrowing admits, with its parameters (one text array per
/// constrained dimension: `col = ANY($n)`; an empty array admits nothing).
pub(crate) fn users_sql(n: &UserNarrowing) -> (String, Vec<Vec<String>>) {
    let mut sql = String::from("SELECT data FROM users WHERE true");
    let mut args = Vec::new();
    for (col, values) in [("id", &n.ids), ("lower(username)", &n.usernames), ("org_id", &n.org_ids)] {
        if let Some(v) = values {
            args.push(v.clone());
            sql.push_str(&format!(" AND {col} = ANY(${}::text[])", args.len()));
        }
    }
    (sql, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_constrained_dimension_is_one_array_parameter() {
        let n = UserNarrowing { ids: None, usernames: Some(vec!["ada".into()]), org_ids: Some(vec![]) };
        let (sql, args) = users_sql(&n);
        assert_eq!(
            sql,
            "SELECT data FROM users WHERE true AND lower(username) = ANY($1::text[]) AND org_id = ANY($2::text[])"
        );
        assert_eq!(args, vec![vec!["ada".to_string()], vec![]]);
    }
}
