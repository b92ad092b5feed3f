//! Every text of the hosted pages in English: the sign-in page ([`LOGIN`]), the registration
//! page ([`REGISTER`]) and the OAuth/OIDC pages ([`PAGES`]).

use super::{Lang, PageTexts, RegisterTexts, Texts, e};

pub const LOGIN: Texts = Texts {
    lang: Lang::En,
    title_suffix: " · passkey",
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

pub const REGISTER: RegisterTexts = RegisterTexts {
    page_title: "Create a passkey",
    title_suffix: " · passkey",
    checking: "Checking your link…",
    lead_before: "Create a passkey for ",
    lead_after: ".",
    your_account: "your account",
    explain: "A passkey lets you sign in with your fingerprint, face, screen lock or security key instead of a password.",
    name_label: "Passkey name",
    name_hint: "Helps you recognise this passkey later.",
    name_missing: "Enter a name for the passkey.",
    name_too_long: "Use at most 200 characters.",
    create_button: "Create passkey",
    other_device: "Create it on another device",
    other_device_text: "Scan this code with the phone or tablet that should hold the passkey. The link works once.",
    qr_alt: "QR code of this registration link",
    ready_announce: "Create a passkey for {name}.",
    progress_title: "Confirm on your device",
    progress_text: "Follow your browser's prompt to create the passkey.",
    progress_announce: "Confirm on your device. Follow your browser's prompt to create the passkey.",
    saving: "Saving your passkey…",
    success_title: "Your passkey is ready",
    success_before: "You can now sign in with the passkey ",
    success_after: ".",
    quoted_name: "\u{201c}{name}\u{201d}",
    success_announce: "Your passkey is ready. You can now sign in with the passkey {name}.",
    close_page: "You can close this page.",
    error_title: "Something went wrong",
    retry_button: "Retry",
    noscript: "This page needs JavaScript to create a passkey. Turn on JavaScript and reload the page.",
    default_name: "Passkey on {platform}",
    default_name_generic: "My passkey",
    errors: &[
        (
            "invalid",
            e(
                "This link is no longer valid",
                "It has expired or has already been used. Ask for a new one.",
                false,
            ),
        ),
        ("cancelled", e("Passkey not created", "The passkey prompt was closed. Try again.", true)),
        (
            "unsupported",
            e(
                "Passkeys are not available",
                "This browser cannot create passkeys. Open this link in an up-to-date browser on a device with a screen lock, or use a security key.",
                false,
            ),
        ),
        (
            "exists",
            e(
                "Passkey already exists",
                "This device already has a passkey for this account. Try again with another device or security key.",
                true,
            ),
        ),
        (
            "origin",
            e(
                "Passkey not created",
                "Passkeys cannot be created for this address. Contact the people who sent you this link.",
                false,
            ),
        ),
        (
            "network",
            e(
                "Cannot reach the server",
                "We could not reach the server. Check your connection and try again.",
                true,
            ),
        ),
        (
            "notAllowed",
            e(
                "This authenticator is not allowed",
                "Your organization does not allow passkeys from this authenticator. Try again with another passkey provider or security key.",
                true,
            ),
        ),
        (
            "notAttested",
            e(
                "This authenticator is not allowed",
                "Your organization only allows authenticators that can prove their make and model, and this one could not. Try again with another security key or device.",
                true,
            ),
        ),
        (
            "generic",
            e("Something went wrong", "Something went wrong while creating your passkey. Try again.", true),
        ),
    ],
};

pub const PAGES: PageTexts = PageTexts {
    request_invalid: "This sign-in request is not valid",
    bad_redirect: "The redirect target is not a valid URL.",
    start_again: "Go back to the application and start the sign-in again.",
    signed_out_title: "You are signed out",
    signed_out_text: "You can close this window.",
    signout_invalid: "This sign-out request is not valid",
};
