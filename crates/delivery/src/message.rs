//! The registration email: subject, text part and HTML part, in the user's language.

use passlink_core::app::LinkMessage;

/// A rendered email (its text carries the link: handle it as a secret).
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email").field("subject", &self.subject).finish_non_exhaustive()
    }
}

struct Texts {
    lang: &'static str,
    subject: &'static str,
    greeting: &'static str,
    body: &'static str,
    button: &'static str,
    fallback: &'static str,
    expiry: &'static str,
    ignore: &'static str,
}

const EN: Texts = Texts {
    lang: "en",
    subject: "Set up your passkey",
    greeting: "Hello",
    body: "You have been invited to add a passkey to your account. A passkey lets you sign in with your fingerprint, face or device PIN instead of a password.",
    button: "Set up passkey",
    fallback: "If the button does not work, open this link in your browser:",
    expiry: "The link can be used once and is valid until",
    ignore: "If you did not expect this email, you can ignore it.",
};

const DE: Texts = Texts {
    lang: "de",
    subject: "Passkey einrichten",
    greeting: "Hallo",
    body: "Sie wurden eingeladen, Ihrem Konto einen Passkey hinzuzufügen. Mit einem Passkey melden Sie sich mit Fingerabdruck, Gesicht oder der PIN Ihres Geräts an statt mit einem Passwort.",
    button: "Passkey einrichten",
    fallback: "Falls die Schaltfläche nicht funktioniert, öffnen Sie diesen Link im Browser:",
    expiry: "Der Link kann einmal verwendet werden und ist gültig bis",
    ignore: "Falls Sie diese E-Mail nicht erwartet haben, können Sie sie ignorieren.",
};

/// German for `de`, `de-CH`, `de_AT`, …; English otherwise.
fn texts(preferred_language: &str) -> &'static Texts {
    let l = preferred_language.trim().to_ascii_lowercase();
    if l == "de" || l.starts_with("de-") || l.starts_with("de_") { &DE } else { &EN }
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2026-11-28 14:05 UTC`.
fn format_utc(t: passlink_core::time::Timestamp) -> String {
    let (y, m, d, h, mi, _) = t.civil();
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02} UTC")
}

/// The email for `m`: a greeting with the display name, the link as a button (HTML) and as
/// plain text (both parts).
pub fn render_email(m: &LinkMessage) -> Email {
    let t = texts(&m.preferred_language);
    let name = if m.display_name.trim().is_empty() { m.to.clone() } else { m.display_name.clone() };
    let link = m.link.expose();
    let until = format_utc(m.expires_at);
    let text = format!(
        "{greeting} {name},\n\n{body}\n\n{button}:\n{link}\n\n{expiry} {until}.\n\n{ignore}\n",
        greeting = t.greeting,
        body = t.body,
        button = t.button,
        expiry = t.expiry,
        ignore = t.ignore,
    );
    let (hname, hlink) = (escape_html(&name), escape_html(link));
    let html = format!(
        r#"<!doctype html>
<html lang="{lang}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{subject}</title></head>
<body style="margin:0;padding:24px;background:#f4f5f7;font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1f2328">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0"><tr><td align="center">
<table role="presentation" cellpadding="0" cellspacing="0" style="max-width:560px;width:100%;background:#ffffff;border-radius:8px;padding:32px">
<tr><td>
<h1 style="font-size:20px;margin:0 0 16px">{subject}</h1>
<p style="margin:0 0 12px">{greeting} {hname},</p>
<p style="margin:0 0 24px;line-height:1.5">{body}</p>
<p style="margin:0 0 24px"><a href="{hlink}" style="display:inline-block;background:#0b5cd5;color:#ffffff;text-decoration:none;padding:12px 20px;border-radius:6px;font-weight:600">{button}</a></p>
<p style="margin:0 0 8px;font-size:14px">{fallback}</p>
<p style="margin:0 0 24px;font-size:14px;word-break:break-all"><a href="{hlink}" style="color:#0b5cd5">{hlink}</a></p>
<p style="margin:0 0 8px;font-size:13px;color:#59636e">{expiry} {until}.</p>
<p style="margin:0;font-size:13px;color:#59636e">{ignore}</p>
</td></tr></table>
</td></tr></table>
</body>
</html>
"#,
        lang = t.lang,
        subject = t.subject,
        greeting = t.greeting,
        body = t.body,
        button = t.button,
        fallback = t.fallback,
        expiry = t.expiry,
        ignore = t.ignore,
    );
    Email { subject: t.subject.to_string(), text, html }
}

#[cfg(test)]
mod tests {
    use super::*;
    use passlink_core::secret::Secret;
    use passlink_core::time::Timestamp;

    fn msg(lang: &str, display: &str) -> LinkMessage {
        LinkMessage {
            job_id: "j".into(),
            code_id: "c".into(),
            user_id: "u".into(),
            org_id: "o".into(),
            message_id: "passkey-link-c".into(),
            to: "ada@example.com".into(),
            given_name: "Ada".into(),
            family_name: "Lovelace".into(),
            display_name: display.into(),
            preferred_language: lang.into(),
            link: Secret::new(
                "https://id.example.com/ui/passkey/register?userID=u&orgID=o&codeID=c&code=AbC123",
            ),
            expires_at: Timestamp::from_unix_secs(1_795_867_500),
        }
    }

    #[test]
    fn english_by_default_with_link_in_both_parts() {
        let e = render_email(&msg("", "Ada <Lovelace>"));
        assert_eq!(e.subject, "Set up your passkey");
        assert!(e.text.starts_with("Hello Ada <Lovelace>,"));
        assert!(e.text.contains(
            "\nhttps://id.example.com/ui/passkey/register?userID=u&orgID=o&codeID=c&code=AbC123\n"
        ));
        assert!(e.html.contains("Hello Ada &lt;Lovelace&gt;,"), "names are escaped in HTML");
        assert!(e.html.contains(
            r#"<a href="https://id.example.com/ui/passkey/register?userID=u&amp;orgID=o&amp;codeID=c&amp;code=AbC123" style="display:inline-block"#
        ));
        assert!(e.text.contains("2026-11-28 12:05 UTC"), "{}", e.text);
        assert!(!format!("{e:?}").contains("AbC123"), "Debug does not show the link");
    }

    #[test]
    fn german_for_de_variants() {
        for lang in ["de", "de-CH", "DE_at"] {
            let e = render_email(&msg(lang, "Ada"));
            assert_eq!(e.subject, "Passkey einrichten");
            assert!(e.text.starts_with("Hallo Ada,"));
            assert!(e.html.contains(r#"<html lang="de">"#));
        }
        assert_eq!(render_email(&msg("fr", "Ada")).subject, "Set up your passkey");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(format_utc(Timestamp(0)), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(Timestamp::from_unix_secs(951_782_400)), "2000-02-29 00:00 UTC");
    }
}
