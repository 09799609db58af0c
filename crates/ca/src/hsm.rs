//! The CA key in a hardware security module, over PKCS#11 (the `cryptoki` crate): an ECDSA P-256
//! key made on the token (sensitive, never extractable) or found there by label, named by a
//! standard PKCS#11 URI (RFC 7512), `pkcs11:token=opencm;object=opencm-ca?module-path=/usr/lib/softhsm/libsofthsm2.so`.
//! The PIN comes from `OPENCM_PKCS11_PIN`, from the file `OPENCM_PKCS11_PIN_FILE` names, or from
//! the URI's `pin-source=file:…`; it is never stored, logged or part of the stored URI.
//!
//! One session is kept open and logged in. When a signature fails (the token was removed, the
//! HSM restarted, the session was closed), the session is dropped and opened again — once at
//! once, and on every later signature until the token answers: a token briefly unavailable costs
//! the requests made meanwhile (503, `CaUnavailable`), never a restart.
//!
//! What no crate does here is written by hand: the URI's few attributes are parsed below, and the
//! token's raw ECDSA signature (r ‖ s) is encoded as the DER `ECDSA-Sig-Value` X.509 wants.

use crate::{CaError, Secret};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use sha2::Digest;
use std::sync::Mutex;

/// The DER of the named curve P-256 (prime256v1), as CKA_EC_PARAMS holds it.
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// A PKCS#11 URI's attributes opencm reads (RFC 7512): the token's label, the key's label, the
/// module to load and where the PIN is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pkcs11Uri {
    pub token: String,
    pub object: String,
    pub module: String,
    /// `pin-source=file:/path` (`pin-value` is refused: a PIN does not belong in a URI that is
    /// stored and shown).
    pub pin_file: Option<String>,
}

/// Where a module is when the URI does not say (Debian's SoftHSM2).
pub const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

impl Pkcs11Uri {
    pub fn parse(text: &str) -> Result<Pkcs11Uri, CaError> {
        let bad = |why: &str| CaError::Load(format!("the PKCS#11 URI: {why}"));
        let rest = text
            .trim()
            .strip_prefix("pkcs11:")
            .ok_or_else(|| bad("it must start with 'pkcs11:'"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (mut token, mut object, mut module, mut pin_file) = (None, None, None, None);
        for (part, sep) in [(path, ';'), (query, '&')] {
            for attr in part.split(sep).filter(|a| !a.is_empty()) {
                let (k, v) = attr
                    .split_once('=')
                    .ok_or_else(|| bad(&format!("'{attr}' is not name=value")))?;
                let v = percent_decode(v).ok_or_else(|| bad("a bad %-escape"))?;
                match k {
                    "token" => token = Some(v),
                    "object" => object = Some(v),
                    "module-path" => module = Some(v),
                    "pin-source" => {
                        pin_file = Some(
                            v.strip_prefix("file:")
                                .ok_or_else(|| bad("pin-source must be file:/path"))?
                                .to_string(),
                        )
                    }
                    "pin-value" => return Err(bad(
                        "give the PIN by OPENCM_PKCS11_PIN or a pin-source file, not in the URI",
                    )),
                    // Other attributes (type, id, manufacturer, serial…) narrow nothing here.
                    _ => {}
                }
            }
        }
        Ok(Pkcs11Uri {
            token: token.ok_or_else(|| bad("it names no token (token=…)"))?,
            object: object.ok_or_else(|| bad("it names no key (object=…)"))?,
            module: module.unwrap_or_else(|| DEFAULT_MODULE.to_string()),
            pin_file,
        })
    }

    /// The URI as it is stored in the database in place of a sealed key: no PIN in it.
    pub fn stored(&self) -> String {
        let mut s = format!(
            "pkcs11:token={};object={}?module-path={}",
            percent_encode(&self.token),
            percent_encode(&self.object),
            percent_encode(&self.module)
        );
        if let Some(f) = &self.pin_file {
            s.push_str(&format!("&pin-source=file:{}", percent_encode(f)));
        }
        s
    }

    /// The token's user PIN: `OPENCM_PKCS11_PIN`, else the file `OPENCM_PKCS11_PIN_FILE` or the
    /// URI's pin-source names.
    pub fn pin(&self) -> Result<Secret, CaError> {
        if let Ok(p) = std::env::var("OPENCM_PKCS11_PIN") {
            return Ok(Secret(p.trim_end_matches(['\r', '\n']).as_bytes().to_vec()));
        }
        let file = std::env::var("OPENCM_PKCS11_PIN_FILE")
            .ok()
            .or_else(|| self.pin_file.clone())
            .ok_or_else(|| {
                CaError::Load("the HSM's PIN: set OPENCM_PKCS11_PIN or OPENCM_PKCS11_PIN_FILE, or pin-source=file:/path in the URI".into())
            })?;
        let text = std::fs::read_to_string(&file)
            .map_err(|e| CaError::Load(format!("the HSM's PIN file {file}: {e}")))?;
        Ok(Secret(
            text.trim_end_matches(['\r', '\n']).as_bytes().to_vec(),
        ))
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The loaded module. Loaded again (C_Finalize, then C_Initialize) when its token has gone:
/// modules such as SoftHSM2 find tokens only when initialised, so a token put back is seen only
/// by a module initialised after it.
struct Module {
    ctx: Pkcs11,
}

struct Open {
    session: Session,
    key: ObjectHandle,
}

struct State {
    module: Option<Module>,
    open: Option<Open>,
}

/// The CA's private key on a token: signs through PKCS#11; its public half is read from the
/// token once.
pub struct HsmKey {
    uri: Pkcs11Uri,
    pin: Secret,
    /// The module and the open session, together: a reload replaces both.
    state: Mutex<State>,
    /// The uncompressed EC point (04 ‖ X ‖ Y), as rcgen and X.509 want it.
    public: Vec<u8>,
    /// Why the last signature failed, for the error the caller sees.
    last_failure: Mutex<Option<String>>,
}

fn p11(what: &str) -> impl Fn(cryptoki::error::Error) -> CaError + '_ {
    move |e| CaError::Unavailable(format!("{what}: {e}"))
}

impl HsmKey {
    fn load_module(uri: &Pkcs11Uri) -> Result<Module, CaError> {
        let ctx = Pkcs11::new(&uri.module)
            .map_err(|e| CaError::Load(format!("the PKCS#11 module {}: {e}", uri.module)))?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| CaError::Load(format!("initialising {}: {e}", uri.module)))?;
        Ok(Module { ctx })
    }

    /// A logged-in session on the token the URI names.
    fn session(
        module: &Module,
        uri: &Pkcs11Uri,
        pin: &Secret,
        rw: bool,
    ) -> Result<Session, CaError> {
        let slots = module
            .ctx
            .get_slots_with_token()
            .map_err(p11("listing the HSM's slots"))?;
        let slot = slots
            .into_iter()
            .find(|s| {
                module
                    .ctx
                    .get_token_info(*s)
                    .is_ok_and(|t| t.label().trim() == uri.token)
            })
            .ok_or_else(|| {
                CaError::Unavailable(format!("no token labelled '{}' is present", uri.token))
            })?;
        let session = if rw {
            module.ctx.open_rw_session(slot)
        } else {
            module.ctx.open_ro_session(slot)
        }
        .map_err(p11("opening a session on the token"))?;
        let pin = AuthPin::new(String::from_utf8_lossy(&pin.0).into_owned().into());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) => {}
            // Another session of this process is logged in already: the login is the token's.
            Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::UserAlreadyLoggedIn,
                _,
            )) => {}
            Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::PinIncorrect, _)) => {
                return Err(CaError::Load(format!(
                    "the PIN of token '{}' is incorrect",
                    uri.token
                )))
            }
            Err(e) => return Err(p11("logging in to the token")(e)),
        }
        Ok(session)
    }

    fn find(
        session: &Session,
        class: ObjectClass,
        label: &str,
    ) -> Result<Option<ObjectHandle>, CaError> {
        Ok(session
            .find_objects(&[
                Attribute::Class(class),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(p11("searching the token"))?
            .into_iter()
            .next())
    }

    /// The key the URI names, opened (the server, at start: an unreachable token or a wrong PIN
    /// stops it with the reason).
    pub fn open(uri: &Pkcs11Uri) -> Result<HsmKey, CaError> {
        Self::open_or_make(uri, false)
    }

    /// `opencm ca init --pkcs11`: the key the URI names, made on the token when it has none by
    /// that label (a P-256 key pair: private, sensitive, never extractable).
    pub fn open_or_generate(uri: &Pkcs11Uri) -> Result<HsmKey, CaError> {
        Self::open_or_make(uri, true)
    }

    fn open_or_make(uri: &Pkcs11Uri, generate: bool) -> Result<HsmKey, CaError> {
        let pin = uri.pin()?;
        let module = Self::load_module(uri)?;
        let session = Self::session(&module, uri, &pin, generate)?;
        let mut public_handle = Self::find(&session, ObjectClass::PUBLIC_KEY, &uri.object)?;
        let mut private = Self::find(&session, ObjectClass::PRIVATE_KEY, &uri.object)?;
        if private.is_none() && generate {
            let label = uri.object.as_bytes().to_vec();
            let id = sha2::Sha256::digest(uri.object.as_bytes())[..8].to_vec();
            let (public, secret) = session
                .generate_key_pair(
                    &Mechanism::EccKeyPairGen,
                    &[
                        Attribute::Token(true),
                        Attribute::Private(false),
                        Attribute::Verify(true),
                        Attribute::EcParams(P256_PARAMS.to_vec()),
                        Attribute::Label(label.clone()),
                        Attribute::Id(id.clone()),
                    ],
                    &[
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Sign(true),
                        Attribute::Label(label),
                        Attribute::Id(id),
                    ],
                )
                .map_err(|e| CaError::Generate(format!("generating the key on the token: {e}")))?;
            public_handle = Some(public);
            private = Some(secret);
        }
        let key = private.ok_or_else(|| {
            CaError::Load(format!(
                "token '{}' holds no private key labelled '{}' (opencm ca init --pkcs11 makes one)",
                uri.token, uri.object
            ))
        })?;
        // The public half: from the public key object, else from the private key's own
        // attributes (some tokens keep only the private object).
        let source = public_handle.unwrap_or(key);
        let attrs = session
            .get_attributes(source, &[AttributeType::KeyType, AttributeType::EcPoint])
            .map_err(p11("reading the key's public half"))?;
        let mut point = None;
        for a in attrs {
            match a {
                Attribute::KeyType(t) if t != KeyType::EC => {
                    return Err(CaError::Load(
                        "the HSM key is not an EC key (opencm signs with P-256 keys on tokens)"
                            .into(),
                    ))
                }
                Attribute::EcPoint(p) => point = Some(p),
                _ => {}
            }
        }
        let point = point.ok_or_else(|| CaError::Load("the HSM key has no EC point".into()))?;
        // CKA_EC_POINT is the DER OCTET STRING holding the point (some modules give it bare).
        let public = match point.as_slice() {
            [0x04, 0x41, rest @ ..] if rest.len() == 65 => rest.to_vec(),
            p if p.len() == 65 && p[0] == 0x04 => p.to_vec(),
            _ => {
                return Err(CaError::Load(
                    "the HSM key is not a P-256 key (an uncompressed 65-byte point)".into(),
                ))
            }
        };
        Ok(HsmKey {
            uri: uri.clone(),
            pin,
            state: Mutex::new(State {
                module: Some(module),
                open: Some(Open { session, key }),
            }),
            public,
            last_failure: Mutex::new(None),
        })
    }

    pub fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }

    /// The reason the last signature failed, taken (the CA reports it as `Unavailable`).
    pub(crate) fn take_failure(&self) -> Option<String> {
        self.last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// A new session on the token; when there is none to be had, the module is reloaded and
    /// asked again (a token removed and put back).
    fn reopen(&self, state: &mut State) -> Result<Open, CaError> {
        state.open = None;
        let first = match &state.module {
            Some(m) => self.open_on(m),
            None => Err(CaError::Unavailable(
                "the PKCS#11 module is not loaded".into(),
            )),
        };
        match first {
            Ok(o) => Ok(o),
            Err(e) => {
                if let Some(m) = state.module.take() {
                    // Sessions are gone with `state.open`; C_Finalize, then load it afresh.
                    let _ = m.ctx.finalize();
                }
                let m = Self::load_module(&self.uri).map_err(|le| {
                    CaError::Unavailable(format!("{e}; reloading the module: {le}"))
                })?;
                let o = self.open_on(&m);
                state.module = Some(m);
                o
            }
        }
    }

    fn open_on(&self, module: &Module) -> Result<Open, CaError> {
        let session = Self::session(module, &self.uri, &self.pin, false)?;
        let key =
            Self::find(&session, ObjectClass::PRIVATE_KEY, &self.uri.object)?.ok_or_else(|| {
                CaError::Unavailable(format!(
                    "token '{}' holds no key labelled '{}' right now",
                    self.uri.token, self.uri.object
                ))
            })?;
        Ok(Open { session, key })
    }

    /// Signs SHA-256(msg) with CKM_ECDSA; a failed session is opened again once before giving up.
    fn sign_digest(&self, msg: &[u8]) -> Result<Vec<u8>, CaError> {
        let digest = sha2::Sha256::digest(msg);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut failure = String::new();
        for _ in 0..2 {
            if state.open.is_none() {
                match self.reopen(&mut state) {
                    Ok(o) => state.open = Some(o),
                    Err(e) => {
                        failure = reason(e);
                        continue;
                    }
                }
            }
            let Some(o) = state.open.as_ref() else {
                continue;
            };
            match o.session.sign(&Mechanism::Ecdsa, o.key, &digest) {
                Ok(raw) => return ecdsa_der(&raw),
                Err(e) => {
                    failure = format!("signing on the token: {e}");
                    state.open = None;
                }
            }
        }
        tracing::warn!(token = %self.uri.token, reason = %failure, "the HSM did not sign");
        Err(CaError::Unavailable(failure))
    }
}

/// What went wrong, without the "unavailable" prefix the caller's error adds.
fn reason(e: CaError) -> String {
    match e {
        CaError::Unavailable(r) => r,
        other => other.to_string(),
    }
}

/// r ‖ s (32 bytes each) as the DER `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }`.
fn ecdsa_der(raw: &[u8]) -> Result<Vec<u8>, CaError> {
    if raw.len() != 64 {
        return Err(CaError::Generate(format!(
            "the token's ECDSA signature has {} bytes, not 64",
            raw.len()
        )));
    }
    let int = |b: &[u8]| {
        let b: Vec<u8> = b.iter().skip_while(|x| **x == 0).copied().collect();
        let mut v = Vec::with_capacity(b.len() + 3);
        v.push(0x02);
        let pad = b.first().is_none_or(|x| x & 0x80 != 0);
        v.push((b.len() + usize::from(pad)) as u8);
        if pad {
            v.push(0);
        }
        v.extend(b);
        v
    };
    let (r, s) = (int(&raw[..32]), int(&raw[32..]));
    let mut out = vec![0x30, (r.len() + s.len()) as u8];
    out.extend(r);
    out.extend(s);
    Ok(out)
}

impl rcgen::PublicKeyData for HsmKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for HsmKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.sign_digest(msg).map_err(|e| {
            *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason(e));
            rcgen::Error::RemoteKeyError
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn uris_are_read_as_rfc_7512_writes_them_and_stored_without_a_pin() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=My%20CA;object=ca-key;type=private?module-path=/usr/lib/x.so&pin-source=file:/etc/opencm/pin",
        )
        .unwrap();
        assert_eq!(u.token, "My CA");
        assert_eq!(u.object, "ca-key");
        assert_eq!(u.module, "/usr/lib/x.so");
        assert_eq!(u.pin_file.as_deref(), Some("/etc/opencm/pin"));
        assert_eq!(Pkcs11Uri::parse(&u.stored()).unwrap(), u);
        assert!(Pkcs11Uri::parse("pkcs11:token=a;object=b?pin-value=1234").is_err());
        assert!(Pkcs11Uri::parse("pkcs11:object=b").is_err());
        assert!(Pkcs11Uri::parse("token=a;object=b").is_err());
        assert_eq!(
            Pkcs11Uri::parse("pkcs11:token=a;object=b").unwrap().module,
            DEFAULT_MODULE
        );
    }

    #[test]
    fn raw_ecdsa_signatures_become_der() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80; // r needs a leading zero
        raw[32] = 0x00;
        raw[33] = 0x01; // s has a leading zero to drop
        let der = ecdsa_der(&raw).unwrap();
        assert_eq!(&der[..5], &[0x30, der.len() as u8 - 2, 0x02, 33, 0x00]);
        assert_eq!(der[5], 0x80);
        let s_at = 2 + 2 + 33;
        assert_eq!(&der[s_at..s_at + 3], &[0x02, 31, 0x01]);
    }
}
