//! Kerberos sign-in for opencm: `Authorization: Negotiate <SPNEGO token>` (RFC 4559) accepted
//! through MIT Kerberos' GSSAPI with the service's keytab, as a `NegotiateAcceptor`. Which user
//! the client principal is stays opencm-app's decision (`KerberosMapping`).
//!
//! Each request carries a whole Kerberos AP-REQ (SPNEGO's optimistic token), so one
//! `gss_accept_sec_context` completes the context; a mechanism that would need a second round
//! trip (NTLM wrapped in SPNEGO) is refused. The replay cache of MIT Kerberos rejects a token
//! presented twice. GSSAPI calls block (keytab and replay-cache files), so they run on tokio's
//! blocking pool.

use async_trait::async_trait;
use libgssapi::context::{SecurityContext, ServerCtx};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name;
use libgssapi::oid::{OidSet, GSS_MECH_KRB5, GSS_MECH_SPNEGO, GSS_NT_KRB5_PRINCIPAL};
use opencm_app::{AppError, NegotiateAcceptor, Negotiated};
use std::path::Path;

/// Largest token accepted: a Kerberos ticket with a large PAC (many groups) runs to a few tens
/// of kilobytes; Windows caps its own at 48 kB (MaxTokenSize).
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// The service's acceptor credential, acquired once from the keytab.
pub struct GssAcceptor {
    cred: Cred,
}

impl GssAcceptor {
    /// Acquires the acceptor credential. `keytab` (else `KRB5_KTNAME`, else krb5.conf's
    /// `default_keytab_name`) holds the service keys; `service_principal` (e.g.
    /// `HTTP/opencm.example.com@EXAMPLE.COM`) restricts acceptance to that principal's key when the
    /// keytab holds others; without it any key in the keytab is accepted.
    pub fn new(keytab: Option<&Path>, service_principal: Option<&str>) -> Result<Self, String> {
        if let Some(kt) = keytab {
            if !kt.is_file() {
                return Err(format!("keytab {} does not exist", kt.display()));
            }
            register_keytab(kt)?;
        }
        let name = match service_principal {
            None => None,
            Some(p) => Some(
                Name::new(p.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
                    .map_err(|e| format!("service principal {p:?}: {e}"))?,
            ),
        };
        let mut mechs = OidSet::new();
        mechs.add(GSS_MECH_SPNEGO).map_err(|e| e.to_string())?;
        mechs.add(GSS_MECH_KRB5).map_err(|e| e.to_string())?;
        let cred = Cred::acquire(name.as_ref(), None, CredUsage::Accept, Some(&mechs))
            .map_err(|e| format!("no acceptor credential from the keytab: {e}"))?;
        Ok(GssAcceptor { cred })
    }
}

/// MIT's `krb5_gss_register_acceptor_identity`: the keytab for acceptor credentials, without
/// changing the process environment (which other threads read). The safe binding does not wrap
/// it, so it is declared here; it is exported by the same libgssapi_krb5 the binding links.
#[allow(unsafe_code)]
fn register_keytab(path: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    extern "C" {
        fn krb5_gss_register_acceptor_identity(path: *const std::os::raw::c_char) -> u32;
    }
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| "keytab path with a NUL byte".to_string())?;
    // SAFETY: a valid NUL-terminated string that outlives the call; MIT copies it.
    let major = unsafe { krb5_gss_register_acceptor_identity(c.as_ptr()) };
    if major != 0 {
        return Err(format!("cannot use keytab {}", path.display()));
    }
    Ok(())
}

fn accept(cred: Cred, token: &[u8]) -> Result<Negotiated, String> {
    let mut ctx = ServerCtx::new(Some(cred));
    let reply = ctx.step(token, None).map_err(|e| e.to_string())?;
    if !ctx.is_complete() {
        return Err("the mechanism needs another round trip (not Kerberos?)".into());
    }
    let client = ctx
        .source_name()
        .map_err(|e| format!("no client name: {e}"))?
        .to_string();
    Ok(Negotiated {
        client,
        reply: reply.map(|b| b.to_vec()),
    })
}

#[async_trait]
impl NegotiateAcceptor for GssAcceptor {
    async fn accept(&self, token: &[u8]) -> Result<Option<Negotiated>, AppError> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            tracing::info!(bytes = token.len(), "Negotiate token empty or too large");
            return Ok(None);
        }
        let cred = self.cred.clone();
        let token = token.to_vec();
        let done = tokio::task::spawn_blocking(move || accept(cred, &token))
            .await
            .map_err(|e| AppError::internal(format!("GSSAPI task: {e}")))?;
        match done {
            Ok(n) => Ok(Some(n)),
            Err(why) => {
                // GSSAPI's own words (e.g. "Request is a replay", "Cannot find key of
                // appropriate type to decrypt AP-REQ"): no secret in them.
                tracing::info!(%why, "Kerberos token refused");
                Ok(None)
            }
        }
    }
}
