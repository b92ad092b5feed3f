//! Every text of the hosted pages, in English ([`en`]) and German ([`de`]), one place per
//! language: the sign-in page ([`Texts`]), the registration page ([`RegisterTexts`]) and the
//! OAuth/OIDC pages ([`PageTexts`]). Each is a struct, so a text missing in one language does
//! not compile. Also the choice of language (`ui_locales`, then `Accept-Language`, else
//! English; the registration page then follows the user's `preferredLanguage`) and the
//! `{{name}}` template renderer (every value HTML-escaped).

mod de;
mod en;
mod register;

pub use register::{PageTexts, RegisterTexts, render_register};

/// A language the hosted pages speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
}

impl Lang {
    /// Every language, English (the fallback) first.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::De];

    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }

    /// The language of a tag such as `de-CH` (`None` when the pages do not speak it).
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_', ';']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "de" => Some(Lang::De),
            _ => None,
        }
    }

    /// The first supported language of `ui_locales` (in order), else of `Accept-Language` (by
    /// quality, then order), else English.
    pub fn choose(ui_locales: &[String], accept_language: Option<&str>) -> Lang {
        if let Some(l) = ui_locales.iter().find_map(|t| Lang::from_tag(t)) {
            return l;
        }
        let mut ranked: Vec<(f32, usize, Lang)> = accept_language
            .unwrap_or_default()
            .split(',')
            .enumerate()
            .filter_map(|(i, part)| {
                let mut pieces = part.split(';');
                let lang = Lang::from_tag(pieces.next()?)?;
                let q = pieces
                    .find_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.parse::<f32>().ok()))
                    .unwrap_or(1.0);
                (q > 0.0).then_some((q, i, lang))
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        ranked.first().map_or(Lang::En, |r| r.2)
    }
}

/// One error screen: title, text, and whether "Try again" makes sense.
#[derive(Debug, Clone, Copy)]
pub struct ErrorText {
    pub title: &'static str,
    pub text: &'static str,
    pub retry: bool,
}

#[derive(Debug, Clone)]
pub struct Texts {
    pub lang: Lang,
    /// After the heading in the window title.
    pub title_suffix: &'static str,
    pub signin_title: &'static str,
    pub demo_lead: &'static str,
    /// `{app}` is replaced by the application's name.
    pub oidc_lead: &'static str,
    pub oidc_lead_generic: &'static str,
    pub username_label: &'static str,
    pub username_hint: &'static str,
    pub signin_button: &'static str,
    pub progress_title: &'static str,
    pub progress_text: &'static str,
    pub success_title: &'static str,
    pub signed_in_as: &'static str,
    pub again_button: &'static str,
    pub error_title: &'static str,
    pub retry_button: &'static str,
    pub noscript: &'static str,
    pub confirm: &'static str,
    pub signing_in: &'static str,
    pub redirecting: &'static str,
    /// (kind, text) for the page script's error kinds.
    pub errors: [(&'static str, ErrorText); 9],
}

const fn e(title: &'static str, text: &'static str, retry: bool) -> ErrorText {
    ErrorText { title, text, retry }
}

impl Texts {
    pub fn of(lang: Lang) -> Texts {
        match lang {
            Lang::En => en::LOGIN,
            Lang::De => de::LOGIN,
        }
    }

    /// Every text (the errors aside). A new field must be named here, or this does not compile.
    pub fn entries(&self) -> [(&'static str, &'static str); 19] {
        let Texts {
            lang: _,
            title_suffix,
            signin_title,
            demo_lead,
            oidc_lead,
            oidc_lead_generic,
            username_label,
            username_hint,
            signin_button,
            progress_title,
            progress_text,
            success_title,
            signed_in_as,
            again_button,
            error_title,
            retry_button,
            noscript,
            confirm,
            signing_in,
            redirecting,
            errors: _,
        } = *self;
        [
            ("title_suffix", title_suffix),
            ("signin_title", signin_title),
            ("demo_lead", demo_lead),
            ("oidc_lead", oidc_lead),
            ("oidc_lead_generic", oidc_lead_generic),
            ("username_label", username_label),
            ("username_hint", username_hint),
            ("signin_button", signin_button),
            ("progress_title", progress_title),
            ("progress_text", progress_text),
            ("success_title", success_title),
            ("signed_in_as", signed_in_as),
            ("again_button", again_button),
            ("error_title", error_title),
            ("retry_button", retry_button),
            ("noscript", noscript),
            ("confirm", confirm),
            ("signing_in", signing_in),
            ("redirecting", redirecting),
        ]
    }

    /// What the page script reads from `<script type="application/json" id="messages">`.
    fn messages_json(&self) -> String {
        let errors: serde_json::Map<String, serde_json::Value> = self
            .errors
            .iter()
            .map(|(k, e)| {
                ((*k).to_string(), serde_json::json!({"title": e.title, "text": e.text, "noRetry": !e.retry}))
            })
            .collect();
        let v = serde_json::json!({
            "errors": errors,
            "confirm": self.confirm,
            "signingIn": self.signing_in,
            "redirecting": self.redirecting,
            "signedInAs": self.signed_in_as,
            "titleSuffix": self.title_suffix,
        });
        script_json(&v)
    }
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The sign-in page: every `{{name}}` of `template` with the text of that name (HTML-escaped);
/// `extra` adds or overrides names. `messages_json` is the JSON block of the script's texts.
pub fn render(template: &str, t: &Texts, extra: &[(&str, &str)]) -> String {
    let fixed: [(&str, &str); 15] = [
        ("lang", t.lang.tag()),
        ("signin_title", t.signin_title),
        ("signin_lead", t.demo_lead),
        ("username_label", t.username_label),
        ("username_hint", t.username_hint),
        ("signin_button", t.signin_button),
        ("progress_title", t.progress_title),
        ("progress_text", t.progress_text),
        ("success_title", t.success_title),
        ("signed_in_as", t.signed_in_as),
        ("again_button", t.again_button),
        ("error_title", t.error_title),
        ("retry_button", t.retry_button),
        ("noscript", t.noscript),
        ("login_hint", ""),
    ];
    let messages = t.messages_json();
    fill(template, &[extra, &fixed], &[("messages_json", &messages)])
}

/// Replace every `{{name}}` of `template`: with the first value of that name in `texts`
/// (HTML-escaped), or with a `json` block as is (already escaped for a script element).
/// Unknown names become empty.
pub(crate) fn fill(template: &str, texts: &[&[(&str, &str)]], json: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 8192);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let name = &after[..end];
        if let Some((_, v)) = json.iter().find(|(k, _)| *k == name) {
            out.push_str(v);
        } else if let Some((_, v)) = texts.iter().find_map(|set| set.iter().find(|(k, _)| *k == name)) {
            out.push_str(&escape(v));
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// A JSON value as the text of a `<script type="application/json">`: no `</` may close it.
pub(crate) fn script_json(v: &serde_json::Value) -> String {
    v.to_string().replace("</", "<\\/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ui_locales_first_then_accept_language_by_quality() {
        assert_eq!(Lang::choose(&["fr".into(), "de-CH".into()], Some("en")), Lang::De);
        assert_eq!(Lang::choose(&[], Some("fr-FR, de;q=0.8, en;q=0.5")), Lang::De);
        assert_eq!(Lang::choose(&[], Some("en;q=0.4, de;q=0.9")), Lang::De);
        assert_eq!(Lang::choose(&[], Some("de;q=0, en")), Lang::En);
        assert_eq!(Lang::choose(&[], None), Lang::En);
    }

    #[test]
    fn rendering_escapes_values_and_leaves_no_placeholder() {
        let html = render(
            include_str!("../../ui/login.html"),
            &Texts::of(Lang::De),
            &[
                ("assets", "passkey/"),
                ("signin_lead", "Weiter zu <App & \"Co\">"),
                ("login_hint", "ada\"><script>"),
                ("initial_error", ""),
            ],
        );
        assert!(!html.contains("{{"), "every placeholder is filled");
        assert!(html.contains("Mit Passkey anmelden"));
        assert!(html.contains("Weiter zu &lt;App &amp; &quot;Co&quot;&gt;"));
        assert!(html.contains("value=\"ada&quot;&gt;&lt;script&gt;\""));
        assert!(html.contains("<html lang=\"de\">"));
        let json_start = html.find("id=\"messages\">").map(|i| i + 14).unwrap_or(0);
        let json_end = html[json_start..].find("</script>").map(|i| i + json_start).unwrap_or(0);
        let messages: serde_json::Value =
            serde_json::from_str(&html[json_start..json_end]).unwrap_or_default();
        assert_eq!(messages["errors"]["cancelled"]["title"], "Nicht angemeldet");
    }

    #[test]
    fn both_languages_name_the_same_error_kinds() {
        let kinds = |t: &Texts| t.errors.iter().map(|(k, _)| *k).collect::<Vec<_>>();
        assert_eq!(kinds(&Texts::of(Lang::En)), kinds(&Texts::of(Lang::De)));
    }
}
