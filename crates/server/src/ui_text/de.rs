//! Every text of the hosted pages in German (Sie-form; "Passkey" as in German UIs): the sign-in
//! page ([`LOGIN`]), the registration page ([`REGISTER`]) and the OAuth/OIDC pages ([`PAGES`]).

use super::{Lang, PageTexts, RegisterTexts, Texts, e};

pub const LOGIN: Texts = Texts {
    lang: Lang::De,
    title_suffix: " · Passkey",
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

pub const REGISTER: RegisterTexts = RegisterTexts {
    page_title: "Passkey erstellen",
    title_suffix: " · Passkey",
    checking: "Ihr Link wird geprüft …",
    lead_before: "Erstellen Sie einen Passkey für ",
    lead_after: ".",
    your_account: "Ihr Konto",
    explain: "Mit einem Passkey melden Sie sich per Fingerabdruck, Gesichtserkennung, Bildschirmsperre oder Sicherheitsschlüssel an – ohne Passwort.",
    name_label: "Name des Passkeys",
    name_hint: "Daran erkennen Sie diesen Passkey später wieder.",
    name_missing: "Geben Sie einen Namen für den Passkey ein.",
    name_too_long: "Verwenden Sie höchstens 200 Zeichen.",
    create_button: "Passkey erstellen",
    other_device: "Auf einem anderen Gerät erstellen",
    other_device_text: "Scannen Sie diesen Code mit dem Smartphone oder Tablet, auf dem der Passkey gespeichert werden soll. Der Link funktioniert nur einmal.",
    qr_alt: "QR-Code dieses Registrierungslinks",
    ready_announce: "Erstellen Sie einen Passkey für {name}.",
    progress_title: "Auf Ihrem Gerät bestätigen",
    progress_text: "Folgen Sie der Aufforderung Ihres Browsers, um den Passkey zu erstellen.",
    progress_announce: "Bestätigen Sie auf Ihrem Gerät. Folgen Sie der Aufforderung Ihres Browsers, um den Passkey zu erstellen.",
    saving: "Ihr Passkey wird gespeichert …",
    success_title: "Ihr Passkey ist bereit",
    success_before: "Sie können sich jetzt mit dem Passkey ",
    success_after: " anmelden.",
    quoted_name: "\u{201e}{name}\u{201c}",
    success_announce: "Ihr Passkey ist bereit. Sie können sich jetzt mit dem Passkey {name} anmelden.",
    close_page: "Sie können diese Seite schließen.",
    error_title: "Etwas ist schiefgelaufen",
    retry_button: "Erneut versuchen",
    noscript: "Diese Seite benötigt JavaScript, um einen Passkey zu erstellen. Schalten Sie JavaScript ein und laden Sie die Seite neu.",
    default_name: "Passkey auf {platform}",
    default_name_generic: "Mein Passkey",
    errors: &[
        (
            "invalid",
            e(
                "Dieser Link ist nicht mehr gültig",
                "Er ist abgelaufen oder wurde bereits verwendet. Fordern Sie einen neuen Link an.",
                false,
            ),
        ),
        (
            "cancelled",
            e(
                "Passkey nicht erstellt",
                "Die Passkey-Abfrage wurde geschlossen. Versuchen Sie es erneut.",
                true,
            ),
        ),
        (
            "unsupported",
            e(
                "Passkeys sind nicht verfügbar",
                "Dieser Browser kann keine Passkeys erstellen. Öffnen Sie den Link in einem aktuellen Browser auf einem Gerät mit Bildschirmsperre, oder verwenden Sie einen Sicherheitsschlüssel.",
                false,
            ),
        ),
        (
            "exists",
            e(
                "Passkey existiert bereits",
                "Dieses Gerät hat bereits einen Passkey für dieses Konto. Versuchen Sie es mit einem anderen Gerät oder Sicherheitsschlüssel.",
                true,
            ),
        ),
        (
            "origin",
            e(
                "Passkey nicht erstellt",
                "Für diese Adresse können keine Passkeys erstellt werden. Wenden Sie sich an die Absender dieses Links.",
                false,
            ),
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
            "notAllowed",
            e(
                "Dieser Authenticator ist nicht erlaubt",
                "Ihre Organisation erlaubt keine Passkeys von diesem Authenticator. Versuchen Sie es mit einem anderen Passkey-Anbieter oder Sicherheitsschlüssel erneut.",
                true,
            ),
        ),
        (
            "notAttested",
            e(
                "Dieser Authenticator ist nicht erlaubt",
                "Ihre Organisation erlaubt nur Authenticators, die Hersteller und Modell nachweisen können, und dieser konnte es nicht. Versuchen Sie es mit einem anderen Sicherheitsschlüssel oder Gerät erneut.",
                true,
            ),
        ),
        (
            "generic",
            e(
                "Etwas ist schiefgelaufen",
                "Beim Erstellen Ihres Passkeys ist etwas schiefgelaufen. Versuchen Sie es erneut.",
                true,
            ),
        ),
    ],
};

pub const PAGES: PageTexts = PageTexts {
    request_invalid: "Diese Anmeldeanfrage ist ungültig",
    bad_redirect: "Das Weiterleitungsziel ist keine gültige URL.",
    start_again: "Kehren Sie zur Anwendung zurück und starten Sie die Anmeldung erneut.",
    signed_out_title: "Sie sind abgemeldet",
    signed_out_text: "Sie können dieses Fenster schließen.",
    signout_invalid: "Diese Abmeldeanfrage ist ungültig",
};
