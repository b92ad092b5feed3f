//! URL templates for registration links: Go `text/template` syntax, as ZITADEL accepts them.
//!
//! A template is validated at request time by parsing it and rendering it with sample values of
//! the four fields ZITADEL allows (`UserID`, `OrgID`, `CodeID`, `Code`); any other field fails.

use gotmpl::{MissingKey, Template, tmap};

use crate::error::{Error, Kind};

/// The values a link template can use.
pub struct LinkData<'a> {
    pub user_id: &'a str,
    pub org_id: &'a str,
    pub code_id: &'a str,
    pub code: &'a str,
}

fn parse_error() -> Error {
    Error::new(Kind::InvalidArgument, "DOMAIN-oGh5e", "Errors.User.InvalidURLTemplate")
}

fn exec_error() -> Error {
    Error::new(Kind::InvalidArgument, "DOMAIN-ieYa7", "Errors.User.InvalidURLTemplate")
}

/// Render `template` with `data`. Parse errors → `DOMAIN-oGh5e`, execution errors (unknown
/// field, bad call) → `DOMAIN-ieYa7`, both 400 "URL Template is invalid".
pub fn render(template: &str, data: &LinkData<'_>) -> Result<String, Error> {
    let t = Template::new("url")
        .missing_key(MissingKey::Error)
        .parse(template)
        .map_err(|e| parse_error().with_cause(e))?;
    let values = tmap! {
        "UserID" => data.user_id,
        "OrgID" => data.org_id,
        "CodeID" => data.code_id,
        "Code" => data.code,
    };
    t.execute_to_string(&values).map_err(|e| exec_error().with_cause(e))
}

/// Validate a template before anything is written (ZITADEL renders it with sample values).
pub fn validate(template: &str, user_id: &str, org_id: &str) -> Result<(), Error> {
    render(template, &LinkData { user_id, org_id, code_id: "codeID", code: "code" }).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "https://example.com/passkey/register?userID={{.UserID}}&orgID={{.OrgID}}&codeID={{.CodeID}}&code={{.Code}}";

    #[test]
    fn renders_the_documented_example() {
        let out = render(EXAMPLE, &LinkData { user_id: "u", org_id: "o", code_id: "c", code: "X" });
        assert_eq!(
            out.ok().as_deref(),
            Some("https://example.com/passkey/register?userID=u&orgID=o&codeID=c&code=X")
        );
    }

    #[test]
    fn go_template_features_work() {
        let d = LinkData { user_id: "u", org_id: "o", code_id: "c", code: "a&b" };
        assert_eq!(render("{{ .Code | urlquery }}", &d).ok().as_deref(), Some("a%26b"));
        assert_eq!(render("{{- /* c */ -}} {{if .Code}}y{{end}}", &d).ok().as_deref(), Some("y"));
    }

    #[test]
    fn parse_errors_are_domain_ogh5e() {
        for t in ["{{", "{{.UserID", "x{{.UserID}"] {
            let e = validate(t, "u", "o").err();
            assert_eq!(e.as_ref().map(|e| e.id), Some("DOMAIN-oGh5e"), "{t}");
            assert_eq!(e.map(|e| e.message()).as_deref(), Some("URL Template is invalid (DOMAIN-oGh5e)"));
        }
    }

    #[test]
    fn unknown_fields_are_domain_iea7() {
        for t in ["https://x/{{.LoginName}}", "{{.userID}}", "{{.UserID.Foo}}"] {
            let e = validate(t, "u", "o").err();
            assert_eq!(e.map(|e| e.id), Some("DOMAIN-ieYa7"), "{t}");
        }
    }

    #[test]
    fn plain_text_is_valid() {
        assert!(validate("https://example.com/", "u", "o").is_ok());
    }
}
