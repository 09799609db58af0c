//! E-mail over SMTP with lettre: STARTTLS, implicit TLS or (for a local relay) plain; optional
//! authentication; one pooled async transport per server.

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use opencm_app::outbox::DeliveryError;
use std::time::Duration;

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP upgraded with STARTTLS, refused if the server does not offer it (port 587).
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
    /// No TLS: only for a relay on the same host or network segment.
    None,
}

impl SmtpTls {
    pub fn parse(s: &str) -> Option<SmtpTls> {
        match s.to_ascii_lowercase().as_str() {
            "starttls" => Some(SmtpTls::StartTls),
            "tls" | "implicit" => Some(SmtpTls::Implicit),
            "none" => Some(SmtpTls::None),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `opencm <pki@example.org>`.
    pub from: String,
    pub timeout: Duration,
}

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The whole of one message's exchange, connection included: lettre's own timeout does
    /// not cover a server that accepts the connection and never greets.
    timeout: Duration,
}

/// Whether `s` is an e-mail address (`name@example.org`, or `Name <name@example.org>`).
pub fn check_address(s: &str) -> Result<(), String> {
    s.parse::<Mailbox>()
        .map(|_| ())
        .map_err(|e| format!("'{s}' is not an e-mail address: {e}"))
}

impl Smtp {
    pub fn new(s: &SmtpSettings) -> Result<Smtp, String> {
        let from: Mailbox = s.from.parse().map_err(|e| {
            format!(
                "[notifications.smtp] from = {:?} is not an address: {e}",
                s.from
            )
        })?;
        let tls = || {
            TlsParameters::new(s.host.clone())
                .map_err(|e| format!("TLS for the SMTP server {}: {e}", s.host))
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
            .port(s.port)
            .timeout(Some(s.timeout));
        b = match s.tls {
            SmtpTls::StartTls => b.tls(Tls::Required(tls()?)),
            SmtpTls::Implicit => b.tls(Tls::Wrapper(tls()?)),
            SmtpTls::None => b.tls(Tls::None),
        };
        if let (Some(user), Some(password)) = (&s.username, &s.password) {
            b = b.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Smtp {
            transport: b.build(),
            from,
            timeout: s.timeout,
        })
    }

    /// Sends one message with a text and an HTML part; answers the server's reply.
    pub async fn send(
        &self,
        to_name: &str,
        to_address: &str,
        subject: &str,
        text: String,
        html: String,
    ) -> Result<String, DeliveryError> {
        // A name that is the address itself is not repeated as a display name.
        let to: Mailbox = if to_name == to_address {
            to_address.parse()
        } else {
            format!("{} <{}>", quote(to_name), to_address)
                .parse()
                .or_else(|_| to_address.parse())
        }
        .map_err(|e| DeliveryError::permanent(format!("'{to_address}' is not an address: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(text),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(html),
                    ),
            )
            .map_err(|e| DeliveryError::permanent(format!("the message cannot be built: {e}")))?;
        let sent = tokio::time::timeout(self.timeout * 3, self.transport.send(message)).await;
        let Ok(sent) = sent else {
            return Err(DeliveryError::transient(format!(
                "SMTP: no answer within {} s",
                (self.timeout * 3).as_secs()
            )));
        };
        match sent {
            Ok(r) => Ok(format!(
                "{} {}",
                r.code(),
                r.message().collect::<Vec<_>>().join(" ")
            )),
            // A 5xx reply: the server will refuse this message again.
            Err(e) if e.is_permanent() => Err(DeliveryError::permanent(format!(
                "the SMTP server refused the message: {e}"
            ))),
            Err(e) => Err(DeliveryError::transient(format!("SMTP: {e}"))),
        }
    }
}

/// A display name as a quoted string (RFC 5322), so commas and accents stay a name.
fn quote(name: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    format!("\"{clean}\"")
}
