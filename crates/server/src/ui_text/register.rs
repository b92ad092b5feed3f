//! The registration page's texts (HTML and script) and the OAuth/OIDC pages' texts.
//!
//! The page is rendered in one language (`Accept-Language`): `{{key}}` in `ui/register.html`
//! is the text of that key, and an element showing a text names its key (`data-t="key"`, or
//! `data-t-alt` for an `alt`). The texts of every language reach the script as JSON
//! (`<script type="application/json" id="texts">`): when `/ui/passkey/register/info` names the
//! user's `preferredLanguage`, the script switches the page to it, and it builds its own
//! sentences (`t("key")`, `{name}` filled in) and error screens (keyed by error kind) from it.

use super::{ErrorText, Lang, de, en, fill, script_json};

/// The registration page, every text. `{name}` / `{platform}` are filled in by the script.
#[derive(Debug, Clone)]
pub struct RegisterTexts {
    pub page_title: &'static str,
    /// After the heading in the window title.
    pub title_suffix: &'static str,
    pub checking: &'static str,
    /// "Create a passkey for " <the user> ".".
    pub lead_before: &'static str,
    pub lead_after: &'static str,
    /// Who, when the user has neither a display nor a login name.
    pub your_account: &'static str,
    pub explain: &'static str,
    pub name_label: &'static str,
    pub name_hint: &'static str,
    pub name_missing: &'static str,
    pub name_too_long: &'static str,
    pub create_button: &'static str,
    pub other_device: &'static str,
    pub other_device_text: &'static str,
    pub qr_alt: &'static str,
    pub ready_announce: &'static str,
    pub progress_title: &'static str,
    pub progress_text: &'static str,
    pub progress_announce: &'static str,
    pub saving: &'static str,
    pub success_title: &'static str,
    /// "You can now sign in with the passkey " <quoted name> ".".
    pub success_before: &'static str,
    pub success_after: &'static str,
    pub quoted_name: &'static str,
    pub success_announce: &'static str,
    pub close_page: &'static str,
    pub error_title: &'static str,
    pub retry_button: &'static str,
    pub noscript: &'static str,
    /// The prefilled passkey name: on a known platform, else the generic one.
    pub default_name: &'static str,
    pub default_name_generic: &'static str,
    /// (error kind, screen) for the script's error kinds; one entry per kind in each language.
    pub errors: &'static [(&'static str, ErrorText)],
}

impl RegisterTexts {
    pub fn of(lang: Lang) -> RegisterTexts {
        match lang {
            Lang::En => en::REGISTER,
            Lang::De => de::REGISTER,
        }
    }

    /// Every text by its key (the errors aside). A new field must be named here, or this does
    /// not compile.
    pub fn entries(&self) -> Vec<(&'static str, &'static str)> {
        let RegisterTexts {
            page_title,
            title_suffix,
            checking,
            lead_before,
            lead_after,
            your_account,
            explain,
            name_label,
            name_hint,
            name_missing,
            name_too_long,
            create_button,
            other_device,
            other_device_text,
            qr_alt,
            ready_announce,
            progress_title,
            progress_text,
            progress_announce,
            saving,
            success_title,
            success_before,
            success_after,
            quoted_name,
            success_announce,
            close_page,
            error_title,
            retry_button,
            noscript,
            default_name,
            default_name_generic,
            errors: _,
        } = *self;
        vec![
            ("page_title", page_title),
            ("title_suffix", title_suffix),
            ("checking", checking),
            ("lead_before", lead_before),
            ("lead_after", lead_after),
            ("your_account", your_account),
            ("explain", explain),
            ("name_label", name_label),
            ("name_hint", name_hint),
            ("name_missing", name_missing),
            ("name_too_long", name_too_long),
            ("create_button", create_button),
            ("other_device", other_device),
            ("other_device_text", other_device_text),
            ("qr_alt", qr_alt),
            ("ready_announce", ready_announce),
            ("progress_title", progress_title),
            ("progress_text", progress_text),
            ("progress_announce", progress_announce),
            ("saving", saving),
            ("success_title", success_title),
            ("success_before", success_before),
            ("success_after", success_after),
            ("quoted_name", quoted_name),
            ("success_announce", success_announce),
            ("close_page", close_page),
            ("error_title", error_title),
            ("retry_button", retry_button),
            ("noscript", noscript),
            ("default_name", default_name),
            ("default_name_generic", default_name_generic),
        ]
    }

    /// `{"texts": {key: text}, "errors": {kind: {title, text, retry}}}` for the script.
    pub fn json(&self) -> serde_json::Value {
        let texts: serde_json::Map<String, serde_json::Value> =
            self.entries().into_iter().map(|(k, v)| (k.to_string(), v.into())).collect();
        let errors: serde_json::Map<String, serde_json::Value> = self
            .errors
            .iter()
            .map(|(k, e)| {
                ((*k).to_string(), serde_json::json!({"title": e.title, "text": e.text, "retry": e.retry}))
            })
            .collect();
        serde_json::json!({"texts": texts, "errors": errors})
    }
}

/// The registration page in `lang`, carrying the texts of every language for its script.
pub fn render_register(template: &str, lang: Lang) -> String {
    let all: serde_json::Map<String, serde_json::Value> =
        Lang::ALL.iter().map(|l| (l.tag().to_string(), RegisterTexts::of(*l).json())).collect();
    let all = script_json(&serde_json::Value::Object(all));
    let texts = RegisterTexts::of(lang).entries();
    fill(template, &[&[("lang", lang.tag())], &texts], &[("texts_json", &all)])
}

/// The pages `/oauth/v2/authorize` and `/oidc/v1/end_session` show in the browser.
#[derive(Debug, Clone)]
pub struct PageTexts {
    pub request_invalid: &'static str,
    pub bad_redirect: &'static str,
    pub start_again: &'static str,
    pub signed_out_title: &'static str,
    pub signed_out_text: &'static str,
    pub signout_invalid: &'static str,
}

impl PageTexts {
    pub fn of(lang: Lang) -> PageTexts {
        match lang {
            Lang::En => en::PAGES,
            Lang::De => de::PAGES,
        }
    }

    /// Every text (a new field must be named here, or this does not compile).
    pub fn entries(&self) -> [&'static str; 6] {
        let PageTexts {
            request_invalid,
            bad_redirect,
            start_again,
            signed_out_title,
            signed_out_text,
            signout_invalid,
        } = *self;
        [request_invalid, bad_redirect, start_again, signed_out_title, signed_out_text, signout_invalid]
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::ui_text::Texts;

    const HTML: &str = include_str!("../../ui/register.html");
    const JS: &str = include_str!("../../ui/register.js");
    const LOGIN_HTML: &str = include_str!("../../ui/login.html");
    const LOGIN_JS: &str = include_str!("../../ui/login.js");

    /// Every `<prefix>name<end>` of `text` (names made of letters, digits and `_`).
    pub(crate) fn names(text: &str, prefix: &str, end: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut rest = text;
        while let Some(i) = rest.find(prefix) {
            let after = &rest[i + prefix.len()..];
            let len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            // The name must be preceded by a non-identifier char (`t(` but not `init(`).
            let boundary =
                rest[..i].chars().next_back().is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
            if len > 0 && boundary && after[len..].starts_with(end) {
                out.insert(after[..len].to_string());
            }
            rest = &after[len..];
        }
        out
    }

    /// The `{x}` slots of a text.
    fn slots(text: &str) -> BTreeSet<String> {
        names(text, "{", "}")
    }

    fn kinds(errors: &[(&'static str, ErrorText)]) -> BTreeSet<String> {
        errors.iter().map(|(k, _)| (*k).to_string()).collect()
    }

    #[test]
    fn every_text_exists_in_every_language_is_non_empty_and_has_the_same_slots() {
        let en = RegisterTexts::of(Lang::En);
        for lang in Lang::ALL {
            let t = RegisterTexts::of(lang);
            let (ours, english) = (t.entries(), en.entries());
            assert_eq!(ours.len(), english.len());
            for ((k, v), (ek, ev)) in ours.iter().zip(english.iter()) {
                assert_eq!(k, ek);
                assert!(!v.trim().is_empty() || *k == "lead_after", "{lang:?} register.{k} is empty");
                assert_eq!(slots(v), slots(ev), "{lang:?} register.{k}: the same {{slots}} as English");
            }
            assert_eq!(kinds(t.errors), kinds(en.errors), "{lang:?}: the same error kinds as English");
            for (k, e) in t.errors {
                assert!(
                    !e.title.trim().is_empty() && !e.text.trim().is_empty(),
                    "{lang:?} register error {k}"
                );
                let english = en.errors.iter().find(|(ek, _)| ek == k).map(|(_, e)| e.retry);
                assert_eq!(Some(e.retry), english, "{lang:?} register error {k}: retry as in English");
            }
            for v in PageTexts::of(lang).entries() {
                assert!(!v.trim().is_empty(), "{lang:?}: an OAuth page text is empty");
            }
            let login = Texts::of(lang);
            for ((k, v), (_, ev)) in login.entries().iter().zip(Texts::of(Lang::En).entries().iter()) {
                assert!(!v.trim().is_empty(), "{lang:?} login.{k} is empty");
                assert_eq!(slots(v), slots(ev), "{lang:?} login.{k}: the same {{slots}} as English");
            }
            for (k, e) in login.errors {
                assert!(!e.title.trim().is_empty() && !e.text.trim().is_empty(), "{lang:?} login error {k}");
            }
        }
    }

    #[test]
    fn german_is_german_not_english_left_over() {
        let same = |a: &[(&str, &str)], b: &[(&str, &str)]| -> Vec<String> {
            a.iter()
                .zip(b)
                .filter(|(x, y)| x.1 == y.1 && x.1.trim() != ".")
                .map(|(x, _)| x.0.to_string())
                .collect()
        };
        let (en, de) = (RegisterTexts::of(Lang::En), RegisterTexts::of(Lang::De));
        assert_eq!(same(&en.entries(), &de.entries()), Vec::<String>::new(), "register");
        assert_eq!(
            same(&Texts::of(Lang::En).entries(), &Texts::of(Lang::De).entries()),
            Vec::<String>::new()
        );
        let (pe, pd) = (PageTexts::of(Lang::En).entries(), PageTexts::of(Lang::De).entries());
        assert!(pe.iter().zip(pd).all(|(a, b)| *a != b), "OAuth pages");
        for ((k, a), (_, b)) in en.errors.iter().zip(de.errors) {
            assert!(a.title != b.title && a.text != b.text, "register error {k}");
        }
    }

    #[test]
    fn every_key_the_pages_use_exists_and_every_text_is_used() {
        let keys: BTreeSet<String> =
            RegisterTexts::of(Lang::En).entries().iter().map(|(k, _)| k.to_string()).collect();
        // register.html: {{key}} (the page's language), data-t / data-t-alt (the script's switch).
        let mut used = names(HTML, "{{", "}}");
        assert!(used.remove("lang") && used.remove("texts_json"), "the page names its language and texts");
        used.extend(names(HTML, "data-t=\"", "\""));
        used.extend(names(HTML, "data-t-alt=\"", "\""));
        // register.js: t("key") and t("key", {...}).
        used.extend(names(JS, "t(\"", "\""));
        let unknown: Vec<_> = used.difference(&keys).collect();
        assert!(unknown.is_empty(), "register page keys without a text: {unknown:?}");
        let unused: Vec<_> = keys.difference(&used).collect();
        assert!(unused.is_empty(), "register texts no page uses: {unused:?}");
        // The error kinds the script shows (showError("kind") and the classifiers' return "kind").
        let mut shown = names(JS, "showError(\"", "\"");
        shown.extend(names(JS, "return \"", "\";"));
        let known = kinds(RegisterTexts::of(Lang::En).errors);
        let missing: Vec<_> = shown.difference(&known).collect();
        assert!(missing.is_empty(), "register error kinds without a text: {missing:?}");
        assert!(shown.contains("invalid") && shown.contains("exists"), "the scan sees the kinds: {shown:?}");

        // login.html: {{name}} are the renderer's names; login.js reads T.<name> and error kinds.
        let login = Texts::of(Lang::En);
        let json: serde_json::Value =
            serde_json::from_str(&login.messages_json().replace("<\\/", "</")).unwrap_or_default();
        let login_keys: BTreeSet<String> =
            json.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        let read: BTreeSet<String> =
            names(LOGIN_JS, "T.", "").into_iter().filter(|k| k != "errors").collect();
        let unknown: Vec<_> = read.difference(&login_keys).collect();
        assert!(unknown.is_empty() && !read.is_empty(), "sign-in script keys without a text: {unknown:?}");
        let mut shown = names(LOGIN_JS, "showError(\"", "\"");
        shown.extend(names(LOGIN_JS, "return \"", "\";"));
        shown.extend(names(LOGIN_HTML, "data-initial-error=\"", "\"").into_iter().filter(|k| !k.is_empty()));
        let known = kinds(&login.errors);
        let missing: Vec<_> = shown.difference(&known).collect();
        assert!(
            missing.is_empty() && shown.contains("unknown"),
            "sign-in error kinds without a text: {missing:?}"
        );
        let rendered = crate::ui_text::render(LOGIN_HTML, &login, &[("assets", ""), ("initial_error", "")]);
        assert!(!rendered.contains("{{"), "every placeholder of login.html has a text");
    }

    #[test]
    fn the_page_is_rendered_in_its_language_with_every_language_for_the_script() {
        for lang in Lang::ALL {
            let html = render_register(HTML, lang);
            assert!(!html.contains("{{"), "every placeholder is filled");
            assert!(html.contains(&format!("<html lang=\"{}\">", lang.tag())));
            let t = RegisterTexts::of(lang);
            assert!(html.contains(&format!("<title data-t=\"page_title\">{}</title>", t.page_title)));
            let start = html.find("id=\"texts\">").map(|i| i + 11).unwrap_or(0);
            let end = html[start..].find("</script>").map(|i| i + start).unwrap_or(0);
            let all: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap_or_default();
            for l in Lang::ALL {
                let texts = RegisterTexts::of(l);
                assert_eq!(all[l.tag()]["texts"]["create_button"], texts.create_button);
                assert_eq!(all[l.tag()]["errors"]["invalid"]["title"], texts.errors[0].1.title);
            }
        }
        let de = render_register(HTML, Lang::De);
        assert!(
            de.contains("Passkey erstellen") && de.contains("alt=\"QR-Code dieses Registrierungslinks\"")
        );
        assert!(!de.contains(">Create passkey<"), "no English in the German HTML outside the script's data");
    }
}
