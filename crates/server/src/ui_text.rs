//! The sign-in page's texts in English and German, the choice of language (`ui_locales`, then
//! `Accept-Language`), and the `{{name}}` template renderer (every value HTML-escaped).

/// A language the hosted pages speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
}

impl Lang {
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }

    fn parse(tag: &str) -> Option<Lang> {
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
        if let Some(l) = ui_locales.iter().find_map(|t| Lang::parse(t)) {
            return l;
        }
        let mut ranked: Vec<(f32, usize, Lang)> = accept_language
            .unwrap_or_default()
            .split(',')
            .enumerate()
            .filter_map(|(i, part)| {
                let mut pieces = part.split(';');
                let lang = Lang::parse(pieces.next()?)?;
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

const EN: Texts = Texts {
    lang: Lang::En,
    signin_title: "Sign in",
    demo_lead: "Sign in with the passkey on this device or a security key. No password, no username needed.",
    oidc_lead: "Sign in to continue to {app}. Use the passkey on this device or a security key.",
    oidc_lead_generic: "Use the passkey on this device or a security key.",
    username_label: "Username",
    username_hint: "Pick your passkey from the suggestions, or use the button.",
    signin_button: "Sign in with a passkey",
    progress_title: "Confirm on your device",
    progress_text: "Follow your browser's prompt to use your passkey.",
    success_title: "You are signed in",
    signed_in_as: "Signed in as",
    again_button: "Sign in again",
    error_title: "Something went wrong",
    retry_button: "Try again",
    noscript: "This page needs JavaScript to sign in with a passkey. Turn on JavaScript and reload the page.",
    confirm: "Confirm on your device. Follow your browser's prompt to use your passkey.",
    signing_in: "Signing you in…",
    redirecting: "Signed in. Taking you back to the application…",
    errors: [
        (
            "cancelled",
            e(
                "Not signed in",
                "The passkey prompt was closed or timed out, or this device has no passkey for this site. Try again.",
                true,
            ),
        ),
        (
            "unknown",
            e(
                "Passkey not recognised",
                "This passkey does not belong to an account here (it may have been deleted). Try again with another passkey.",
                true,
            ),
        ),
        (
            "unsupported",
            e(
                "Passkeys are not available",
                "This browser cannot use passkeys. Open this page in an up-to-date browser on a device with a screen lock, or use a security key.",
                false,
            ),
        ),
        ("origin", e("Not signed in", "Passkeys cannot be used on this address.", false)),
        (
            "network",
            e(
                "Cannot reach the server",
                "We could not reach the server. Check your connection and try again.",
                true,
            ),
        ),
        (
            "expired",
            e(
                "This sign-in has expired",
                "This sign-in request is no longer valid. Go back to the application and start again.",
                false,
            ),
        ),
        (
            "inactive",
            e(
                "Account not available",
                "This account is deactivated or was deleted. Contact your administrator.",
                true,
            ),
        ),
        ("generic", e("Not signed in", "Something went wrong while signing you in. Try again.", true)),
        ("none", e("Not signed in", "Try again.", true)),
    ],
};

const DE: Texts = Texts {
    lang: Lang::De,
    signin_title: "Anmelden",
    demo_lead: "Melden Sie sich mit dem Passkey auf diesem Gerät oder einem Sicherheitsschlüssel an. Ohne Passwort, ohne Benutzername.",
    oidc_lead: "Melden Sie sich an, um mit {app} fortzufahren. Verwenden Sie den Passkey auf diesem Gerät oder einen Sicherheitsschlüssel.",
    oidc_lead_generic: "Verwenden Sie den Passkey auf diesem Gerät oder einen Sicherheitsschlüssel.",
    username_label: "Benutzername",
    username_hint: "Wählen Sie Ihren Passkey aus den Vorschlägen oder nutzen Sie die Schaltfläche.",
    signin_button: "Mit Passkey anmelden",
    progress_title: "Auf Ihrem Gerät bestätigen",
    progress_text: "Folgen Sie der Aufforderung Ihres Browsers, um Ihren Passkey zu verwenden.",
    success_title: "Sie sind angemeldet",
    signed_in_as: "Angemeldet als",
    again_button: "Erneut anmelden",
    error_title: "Etwas ist schiefgelaufen",
    retry_button: "Erneut versuchen",
    noscript: "Diese Seite benötigt JavaScript für die Anmeldung mit einem Passkey. Schalten Sie JavaScript ein und laden Sie die Seite neu.",
    confirm: "Bestätigen Sie auf Ihrem Gerät. Folgen Sie der Aufforderung Ihres Browsers, um Ihren Passkey zu verwenden.",
    signing_in: "Sie werden angemeldet …",
    redirecting: "Angemeldet. Sie werden zur Anwendung zurückgeleitet …",
    errors: [
        (
            "cancelled",
            e(
                "Nicht angemeldet",
                "Die Passkey-Abfrage wurde geschlossen oder ist abgelaufen, oder dieses Gerät hat keinen Passkey für diese Seite. Versuchen Sie es erneut.",
                true,
            ),
        ),
        (
            "unknown",
            e(
                "Passkey nicht erkannt",
                "Dieser Passkey gehört zu keinem Konto hier (er wurde vielleicht gelöscht). Versuchen Sie es mit einem anderen Passkey.",
                true,
            ),
        ),
        (
            "unsupported",
            e(
                "Passkeys sind nicht verfügbar",
                "Dieser Browser kann keine Passkeys verwenden. Öffnen Sie die Seite in einem aktuellen Browser auf einem Gerät mit Bildschirmsperre, oder verwenden Sie einen Sicherheitsschlüssel.",
                false,
            ),
        ),
        (
            "origin",
            e("Nicht angemeldet", "Passkeys können unter dieser Adresse nicht verwendet werden.", false),
        ),
        (
            "network",
            e(
                "Server nicht erreichbar",
                "Der Server ist nicht erreichbar. Prüfen Sie Ihre Verbindung und versuchen Sie es erneut.",
                true,
            ),
        ),
        (
            "expired",
            e(
                "Diese Anmeldung ist abgelaufen",
                "Diese Anmeldeanfrage ist nicht mehr gültig. Kehren Sie zur Anwendung zurück und beginnen Sie erneut.",
                false,
            ),
        ),
        (
            "inactive",
            e(
                "Konto nicht verfügbar",
                "Dieses Konto ist deaktiviert oder wurde gelöscht. Wenden Sie sich an Ihre Administration.",
                true,
            ),
        ),
        (
            "generic",
            e(
                "Nicht angemeldet",
                "Bei der Anmeldung ist etwas schiefgelaufen. Versuchen Sie es erneut.",
                true,
            ),
        ),
        ("none", e("Nicht angemeldet", "Versuchen Sie es erneut.", true)),
    ],
};

impl Texts {
    pub fn of(lang: Lang) -> Texts {
        match lang {
            Lang::En => EN,
            Lang::De => DE,
        }
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
        });
        // Inside <script>: no "</" may close the element.
        v.to_string().replace("</", "<\\/")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Replace every `{{name}}` of `template` with the text of that name (HTML-escaped); `extra`
/// adds or overrides names. `messages_json` is the JSON block (escaped for a script element).
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
    let mut out = String::with_capacity(template.len() + 2048);
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
        if name == "messages_json" {
            out.push_str(&messages);
        } else if let Some((_, v)) =
            extra.iter().find(|(k, _)| *k == name).or_else(|| fixed.iter().find(|(k, _)| *k == name))
        {
            out.push_str(&escape(v));
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
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
            include_str!("../ui/login.html"),
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
