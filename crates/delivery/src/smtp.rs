//! The SMTP sender.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use passlink_core::app::LinkMessage;
use passlink_core::secret::Secret;

use crate::{SendError, Sender, render_email};

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text (a local relay or a test server only).
    None,
    /// STARTTLS required (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// The sender address ("" before the server fills in its default).
    pub from: String,
    pub from_name: Option<String>,
    /// PEM certificates trusted besides the public roots (a relay with a private CA).
    pub ca_pem: Option<Vec<u8>>,
    /// Connect, command and data timeout.
    pub timeout: Duration,
}

pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The right-hand side of Message-IDs (the sender address's domain).
    id_domain: String,
}

impl SmtpSender {
    /// Check the configuration (addresses, TLS setup); connects lazily, on the first message.
    pub fn new(cfg: &SmtpConfig) -> Result<SmtpSender, String> {
        let address: lettre::Address = cfg
            .from
            .parse()
            .map_err(|e| format!("--smtp-from {:?} is not an email address: {e}", cfg.from))?;
        let from = Mailbox::new(cfg.from_name.clone().filter(|n| !n.is_empty()), address.clone());
        let tls_parameters = || {
            let mut b = TlsParameters::builder(cfg.host.clone());
            if let Some(pem) = &cfg.ca_pem {
                let cert = Certificate::from_pem(pem).map_err(|e| format!("--smtp-ca-file: {e}"))?;
                b = b.add_root_certificate(cert);
            }
            b.build().map_err(|e| format!("SMTP TLS setup for {}: {e}", cfg.host))
        };
        let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host);
        let builder = match cfg.tls {
            SmtpTls::None => builder,
            SmtpTls::Starttls => builder.tls(Tls::Required(tls_parameters()?)),
            SmtpTls::Tls => builder.tls(Tls::Wrapper(tls_parameters()?)),
        };
        let mut builder = builder.port(cfg.port).timeout(Some(cfg.timeout));
        if let Some(user) = &cfg.user {
            let password = cfg.password.as_ref().map(|p| p.expose().to_string()).unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(SmtpSender { transport: builder.build(), from, id_domain: address.domain().to_string() })
    }

    fn build(&self, m: &LinkMessage) -> Result<Message, SendError> {
        let to_addr: lettre::Address =
            m.to.parse()
                .map_err(|e| SendError::permanent(format!("the user's email address is not valid: {e}")))?;
        let name = m.display_name.trim();
        let to = Mailbox::new((!name.is_empty()).then(|| name.to_string()), to_addr);
        let email = render_email(m);
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject)
            .message_id(Some(format!("<{}@{}>", m.message_id, self.id_domain)))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder().header(ContentType::TEXT_PLAIN).body(readable(email.text)),
                    )
                    .singlepart(
                        SinglePart::builder().header(ContentType::TEXT_HTML).body(readable(email.html)),
                    ),
            )
            .map_err(|e| SendError::permanent(format!("building the message: {e}")))
    }
}

/// An ASCII body whose lines fit SMTP's limit (998) goes as it reads (7bit), so the link stands
/// in the message unbroken (lettre would switch to quoted-printable above 76 characters a line);
/// anything else is encoded by lettre (quoted-printable or base64).
fn readable(text: String) -> Body {
    if text.is_ascii() && !text.contains('\0') && text.lines().all(|l| l.len() <= 900) {
        let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::SevenBit)
    } else {
        Body::new(text)
    }
}

#[async_trait]
impl Sender for SmtpSender {
    fn name(&self) -> &'static str {
        "smtp"
    }

    async fn send(&self, m: &LinkMessage) -> Result<(), SendError> {
        let message = self.build(m)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            // Only the error's own text: lettre's errors carry the server's reply, never the
            // message body.
            Err(e) if e.is_permanent() => Err(SendError::permanent(format!("smtp: {e}"))),
            Err(e) => Err(SendError::transient(format!("smtp: {e}"))),
        }
    }
}
