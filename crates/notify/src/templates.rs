//! E-mail templates: a subject, a text body and an HTML body per event and language, written in
//! Jinja2 syntax (minijinja) so an operator can change them without rebuilding.
//!
//! Where a part is looked up, first found wins (`LANG` is `en` or `es`):
//! 1. `TEMPLATES_DIR/TEMPLATE-NAME/REQUEST-TYPE/EVENT.LANG.PART` — the workflow policy's own, as
//!    MIM CM has an e-mail template per policy (e.g. `Smartcard VSC/Enroll/request.pending_approval.es.subject`);
//! 2. `TEMPLATES_DIR/EVENT.LANG.PART`;
//! 3. the built-in one below.
//!
//! PART is `subject`, `txt` or `html`. Without an `html` file the HTML part is the text body,
//! escaped, in a plain layout with the request's link. Templates see `event`, `data` (the
//! event's JSON), `request` (uuid, type, status, comment, submitted, template, url),
//! `originator`, `target` and `recipient` (name, login), and `portal_url`.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use opencm_domain::notification::EventType;
use std::path::PathBuf;

/// A rendered e-mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct Templates {
    dir: Option<PathBuf>,
}

/// The built-in subject and text body of an event, in a language.
fn builtin(event: Option<EventType>, lang: &str) -> (&'static str, &'static str) {
    use EventType as E;
    let es = lang == "es";
    match (event, es) {
        (None, false) => (
            "opencm: test e-mail",
            "This is a test e-mail from opencm. If you read it, opencm can send you notifications.",
        ),
        (None, true) => (
            "opencm: correo de prueba",
            "Este es un correo de prueba de opencm. Si lo lee, opencm puede enviarle notificaciones.",
        ),
        (Some(E::RequestPendingApproval), false) => (
            "Approval needed: {{ request.type }} request for {{ target.name }} ({{ request.template }})",
            "Hello {{ recipient.name }},\n\n{{ originator.name }} made a request{% if originator.login != target.login %} for {{ target.name }}{% endif %}: {{ request.type }}, template {{ request.template }}. It waits for your approval.\n{% if request.comment %}\nComment: {{ request.comment }}\n{% endif %}\nRequest: {{ request.uuid }}",
        ),
        (Some(E::RequestPendingApproval), true) => (
            "Aprobación necesaria: solicitud {{ request.type }} para {{ target.name }} ({{ request.template }})",
            "Hola, {{ recipient.name }}:\n\n{{ originator.name }} ha hecho una solicitud{% if originator.login != target.login %} para {{ target.name }}{% endif %}: {{ request.type }}, plantilla {{ request.template }}. Espera su aprobación.\n{% if request.comment %}\nComentario: {{ request.comment }}\n{% endif %}\nSolicitud: {{ request.uuid }}",
        ),
        (Some(E::RequestApproved), false) => (
            "Approved: your {{ request.type }} request ({{ request.template }})",
            "Hello {{ recipient.name }},\n\nThe {{ request.type }} request for {{ target.name }} with the template {{ request.template }} was approved. It can now be carried out.\n\nRequest: {{ request.uuid }}",
        ),
        (Some(E::RequestApproved), true) => (
            "Aprobada: su solicitud {{ request.type }} ({{ request.template }})",
            "Hola, {{ recipient.name }}:\n\nLa solicitud {{ request.type }} para {{ target.name }} con la plantilla {{ request.template }} ha sido aprobada. Ya puede llevarse a cabo.\n\nSolicitud: {{ request.uuid }}",
        ),
        (Some(E::RequestDenied), false) => (
            "Denied: your {{ request.type }} request ({{ request.template }})",
            "Hello {{ recipient.name }},\n\nThe {{ request.type }} request for {{ target.name }} with the template {{ request.template }} was denied.\n\nRequest: {{ request.uuid }}",
        ),
        (Some(E::RequestDenied), true) => (
            "Denegada: su solicitud {{ request.type }} ({{ request.template }})",
            "Hola, {{ recipient.name }}:\n\nLa solicitud {{ request.type }} para {{ target.name }} con la plantilla {{ request.template }} ha sido denegada.\n\nSolicitud: {{ request.uuid }}",
        ),
        (Some(E::RequestCanceled), false) => (
            "Canceled: {{ request.type }} request ({{ request.template }})",
            "Hello {{ recipient.name }},\n\nThe {{ request.type }} request for {{ target.name }} with the template {{ request.template }} was canceled.\n\nRequest: {{ request.uuid }}",
        ),
        (Some(E::RequestCanceled), true) => (
            "Cancelada: solicitud {{ request.type }} ({{ request.template }})",
            "Hola, {{ recipient.name }}:\n\nLa solicitud {{ request.type }} para {{ target.name }} con la plantilla {{ request.template }} ha sido cancelada.\n\nSolicitud: {{ request.uuid }}",
        ),
        (Some(E::RequestFailed), false) => (
            "Failed: {{ request.type }} request ({{ request.template }})",
            "Hello {{ recipient.name }},\n\nThe {{ request.type }} request for {{ target.name }} with the template {{ request.template }} was abandoned before it completed. Ask the help desk to start it again.\n\nRequest: {{ request.uuid }}",
        ),
        (Some(E::RequestFailed), true) => (
            "Fallida: solicitud {{ request.type }} ({{ request.template }})",
            "Hola, {{ recipient.name }}:\n\nLa solicitud {{ request.type }} para {{ target.name }} con la plantilla {{ request.template }} se abandonó antes de completarse. Pida al servicio de asistencia que la inicie de nuevo.\n\nSolicitud: {{ request.uuid }}",
        ),
        (Some(E::RequestCompleted), false) => (
            "Done: {{ request.type }} request ({{ request.template }})",
            "Hello {{ recipient.name }},\n\nThe {{ request.type }} request for {{ target.name }} with the template {{ request.template }} is complete.\n\nRequest: {{ request.uuid }}",
        ),
        (Some(E::RequestCompleted), true) => (
            "Completada: solicitud {{ request.type }} ({{ request.template }})",
            "Hola, {{ recipient.name }}:\n\nLa solicitud {{ request.type }} para {{ target.name }} con la plantilla {{ request.template }} se ha completado.\n\nSolicitud: {{ request.uuid }}",
        ),
        (Some(E::SecretsDistributed), false) => (
            "Your one-time password for the {{ request.type }} request ({{ request.template }})",
            "Hello {{ recipient.name }},\n\n{% if half %}Here is the {{ half }} half of the one-time password{% else %}Here is the one-time password{% endif %} for the {{ request.type }} request for {{ target.name }} with the template {{ request.template }}:\n\n    {{ secret }}\n\n{% if half %}Whoever carries the request out types both halves, the first one first. {% endif %}It works until {{ expires }}, and only a few times. Do not forward this e-mail.\n\nRequest: {{ request.uuid }}",
        ),
        (Some(E::SecretsDistributed), true) => (
            "Su contraseña de un solo uso para la solicitud {{ request.type }} ({{ request.template }})",
            "Hola, {{ recipient.name }}:\n\n{% if half %}Esta es la {% if half == \"first\" %}primera{% else %}segunda{% endif %} mitad de la contraseña de un solo uso{% else %}Esta es la contraseña de un solo uso{% endif %} de la solicitud {{ request.type }} para {{ target.name }} con la plantilla {{ request.template }}:\n\n    {{ secret }}\n\n{% if half %}Quien lleve a cabo la solicitud escribe las dos mitades, primero la primera. {% endif %}Es válida hasta {{ expires }} y solo unas pocas veces. No reenvíe este correo.\n\nSolicitud: {{ request.uuid }}",
        ),
        (Some(E::CertificateExpiring), false) => (
            "Your certificate expires in {{ data.days }} days",
            "Hello {{ recipient.name }},\n\nYour certificate {{ data.subject }} (serial {{ data.serialNumber }}) expires on {{ data.notAfter }}. Renew it before then.",
        ),
        (Some(E::CertificateExpiring), true) => (
            "Su certificado caduca en {{ data.days }} días",
            "Hola, {{ recipient.name }}:\n\nSu certificado {{ data.subject }} (número de serie {{ data.serialNumber }}) caduca el {{ data.notAfter }}. Renuévelo antes.",
        ),
        (Some(E::OutboxDeadLetter), false) => (
            "opencm could not deliver a notification ({{ data.event }} to {{ data.channel }})",
            "opencm gave up delivering the notification {{ data.eventId }} ({{ data.event }}) to {{ data.channel }} after {{ data.attempts }} tries.\n\nLast error: {{ data.error }}\n\nOutbox row: {{ data.outboxId }} (replay it with POST /opencm/v1/outbox/{{ data.outboxId }}/replay once the cause is mended).",
        ),
        (Some(E::OutboxDeadLetter), true) => (
            "opencm no pudo entregar una notificación ({{ data.event }} a {{ data.channel }})",
            "opencm dejó de intentar entregar la notificación {{ data.eventId }} ({{ data.event }}) a {{ data.channel }} tras {{ data.attempts }} intentos.\n\nÚltimo error: {{ data.error }}\n\nFila de la bandeja de salida: {{ data.outboxId }} (vuelva a enviarla con POST /opencm/v1/outbox/{{ data.outboxId }}/replay cuando la causa esté resuelta).",
        ),
        (Some(_), false) => (
            "opencm: {{ event }}",
            "Hello {{ recipient.name }},\n\nopencm: {{ event }}.",
        ),
        (Some(_), true) => ("opencm: {{ event }}", "Hola, {{ recipient.name }}:\n\nopencm: {{ event }}."),
    }
}

/// The HTML part when no `html` template is given: the text body, escaped, one paragraph per
/// blank-line-separated block, and the request's link.
const LAYOUT: &str = r#"<!DOCTYPE html>
<html lang="{{ lang }}"><head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body style="font-family: sans-serif; line-height: 1.5; color: #1a1a1a; max-width: 40em">
{% for block in paragraphs %}<p>{% for line in block %}{{ line }}{% if not loop.last %}<br>{% endif %}{% endfor %}</p>
{% endfor %}{% if request and request.url %}<p><a href="{{ request.url }}">{{ link }}</a></p>{% endif %}
</body></html>
"#;

impl Templates {
    pub fn new(dir: Option<PathBuf>) -> Self {
        Templates { dir }
    }

    /// The file of a part, if the operator wrote one (policy's first): its path and text.
    fn file(&self, policy: Option<&str>, name: &str) -> Result<Option<(String, String)>, String> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let mut places = Vec::new();
        if let Some(p) = policy {
            // A template or request type name never climbs out of the directory.
            if !p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
                places.push(dir.join(p).join(name));
            }
        }
        places.push(dir.join(name));
        for path in places {
            match std::fs::read_to_string(&path) {
                Ok(s) => return Ok(Some((path.display().to_string(), s))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
            }
        }
        Ok(None)
    }

    /// Renders an event's e-mail in `lang` ("en" or "es"). An error is the operator's template
    /// (its file and what is wrong): retrying will not mend it.
    pub fn render(
        &self,
        event: Option<EventType>,
        policy: Option<&str>,
        lang: &str,
        context: &serde_json::Value,
    ) -> Result<Rendered, String> {
        let lang = if lang == "es" { "es" } else { "en" };
        let stem = event.map_or("test", EventType::name);
        let (subject_builtin, text_builtin) = builtin(event, lang);
        let builtin_name = |part: &str| format!("the built-in {stem}.{lang}.{part}");
        let (subject_name, subject_src) = self
            .file(policy, &format!("{stem}.{lang}.subject"))?
            .unwrap_or_else(|| (builtin_name("subject"), subject_builtin.to_string()));
        let (text_name, text_src) = self
            .file(policy, &format!("{stem}.{lang}.txt"))?
            .unwrap_or_else(|| (builtin_name("txt"), text_builtin.to_string()));
        let html_src = self.file(policy, &format!("{stem}.{lang}.html"))?;

        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_auto_escape_callback(|name| {
            if name.ends_with("html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        // Named by its file (or "the built-in …"); the auto-escape callback reads the suffix.
        let render = |name: &str, src: &str, ctx: &serde_json::Value| {
            env.render_named_str(name, src, ctx)
                .map_err(|e| format!("template {name}: {e}"))
        };
        let subject = render(&subject_name, &subject_src, context)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let text = render(&text_name, &text_src, context)?;
        let html = match html_src {
            Some((name, src)) => render(&name, &src, context)?,
            None => {
                let mut ctx = context.clone();
                if let Some(map) = ctx.as_object_mut() {
                    map.insert("lang".into(), lang.into());
                    map.insert("subject".into(), subject.clone().into());
                    let paragraphs: Vec<Vec<&str>> = text
                        .trim()
                        .split("\n\n")
                        .map(|p| p.lines().collect())
                        .collect();
                    map.insert("paragraphs".into(), serde_json::json!(paragraphs));
                    let link = if lang == "es" {
                        "Ver la solicitud"
                    } else {
                        "Open the request"
                    };
                    map.insert("link".into(), link.into());
                }
                render("the built-in layout.html", LAYOUT, &ctx)?
            }
        };
        Ok(Rendered {
            subject,
            text,
            html,
        })
    }
}

/// Compiles every template file under `dir` (`*.subject`, `*.txt`, `*.html`, policies'
/// folders included): the first that does not parse, by its path.
pub fn check_dir(dir: &std::path::Path) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .path();
        if path.is_dir() {
            check_dir(&path)?;
            continue;
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !matches!(ext, "subject" | "txt" | "html") {
            continue;
        }
        let src = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let env = Environment::new();
        env.template_from_str(&src)
            .map_err(|e| format!("e-mail template {}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn context() -> serde_json::Value {
        serde_json::json!({
            "event": "request.pending_approval",
            "request": {"uuid": "r-1", "type": "Enroll", "template": "VSC <Smartcard>",
                        "comment": "", "url": "https://cm.example/requests/r-1"},
            "originator": {"name": "Alice"},
            "target": {"name": "Juan Pérez"},
            "recipient": {"name": "Bob"},
        })
    }

    #[test]
    fn built_in_templates_speak_both_languages_and_escape_html() {
        let t = Templates::new(None);
        for e in opencm_app::outbox::EMAIL_EVENTS {
            for lang in ["en", "es"] {
                t.render(Some(e), None, lang, &context()).unwrap();
            }
        }
        let en = t
            .render(
                Some(EventType::RequestPendingApproval),
                None,
                "en",
                &context(),
            )
            .unwrap();
        assert_eq!(
            en.subject,
            "Approval needed: Enroll request for Juan Pérez (VSC <Smartcard>)"
        );
        assert!(
            en.text.contains("It waits for your approval."),
            "{}",
            en.text
        );
        assert!(en.html.contains("VSC &lt;Smartcard&gt;"), "{}", en.html);
        // minijinja's HTML escaping writes `/` as `&#x2f;` (as valid in an attribute).
        assert!(
            en.html
                .contains(r#"<a href="https:&#x2f;&#x2f;cm.example&#x2f;requests&#x2f;r-1">"#),
            "{}",
            en.html
        );
        let es = t
            .render(
                Some(EventType::RequestPendingApproval),
                None,
                "es",
                &context(),
            )
            .unwrap();
        assert!(
            es.subject.starts_with("Aprobación necesaria"),
            "{}",
            es.subject
        );
    }

    #[test]
    fn a_policys_own_template_comes_first_and_a_broken_one_says_where() {
        let dir = std::env::temp_dir().join(format!("opencm-tpl-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("VSC/Enroll")).unwrap();
        std::fs::write(
            dir.join("VSC/Enroll/request.pending_approval.en.subject"),
            "VSC for {{ target.name }}",
        )
        .unwrap();
        std::fs::write(dir.join("request.denied.en.txt"), "{% if %}").unwrap();
        let t = Templates::new(Some(dir.clone()));
        let r = t
            .render(
                Some(EventType::RequestPendingApproval),
                Some("VSC/Enroll"),
                "en",
                &context(),
            )
            .unwrap();
        assert_eq!(r.subject, "VSC for Juan Pérez");
        let other = t
            .render(
                Some(EventType::RequestPendingApproval),
                Some("Wi-Fi/Enroll"),
                "en",
                &context(),
            )
            .unwrap();
        assert!(other.subject.starts_with("Approval needed"));
        let e = t
            .render(Some(EventType::RequestDenied), None, "en", &context())
            .unwrap_err();
        assert!(e.contains("request.denied.en.txt"), "{e}");
        assert!(
            e.contains(&dir.display().to_string()),
            "the whole path: {e}"
        );
        let refused = check_dir(&dir).unwrap_err();
        assert!(refused.contains("request.denied.en.txt"), "{refused}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
