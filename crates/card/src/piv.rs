//! The PIV card application (NIST SP 800-73-4) as far as provisioning needs it, plus the Yubico
//! SET MANAGEMENT KEY extension every current PIV token implements. The client never holds an
//! admin key: `authenticate_admin` hands the card's challenge to a callback (the server) and the
//! answer back to the card.

use crate::apdu::{encode, tlv, StatusWord, Transport};
use anyhow::{anyhow, bail, Context, Result};

/// The PIV application identifier with its version, the form every PIV card accepts.
const PIV_AID: [u8; 9] = [0xa0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00];
const PIN_REF: u8 = 0x80;
const PUK_REF: u8 = 0x81;
const ADMIN_KEY_REF: u8 = 0x9b;

/// The card's admin (management) key algorithm, as PIV numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminAlgorithm {
    Tdes,
    Aes128,
    Aes192,
    Aes256,
}

impl AdminAlgorithm {
    /// From the template's `AdminKeyAlgorithm` (`tdes`, `aes128`, ...).
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "tdes" | "3des" => Self::Tdes,
            "aes128" => Self::Aes128,
            "aes192" => Self::Aes192,
            "aes256" => Self::Aes256,
            other => bail!("unknown admin key algorithm '{other}'"),
        })
    }

    fn id(self) -> u8 {
        match self {
            Self::Tdes => 0x03,
            Self::Aes128 => 0x08,
            Self::Aes192 => 0x0a,
            Self::Aes256 => 0x0c,
        }
    }

    fn key_len(self) -> usize {
        match self {
            Self::Tdes | Self::Aes192 => 24,
            Self::Aes128 => 16,
            Self::Aes256 => 32,
        }
    }
}

/// Key algorithms for GENERATE ASYMMETRIC KEY PAIR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    EcdsaP256,
    EcdsaP384,
}

impl KeyAlgorithm {
    /// From the generation options' MIM name (`ECDSA_P256`, ...).
    pub fn from_mim(name: &str) -> Result<Self> {
        match name.to_ascii_uppercase().as_str() {
            "ECDSA_P256" => Ok(Self::EcdsaP256),
            "ECDSA_P384" => Ok(Self::EcdsaP384),
            other => bail!("key algorithm '{other}' is not supported on PIV cards by this client"),
        }
    }

    fn id(self) -> u8 {
        match self {
            Self::EcdsaP256 => 0x11,
            Self::EcdsaP384 => 0x14,
        }
    }
}

/// A PIV key slot (`9a`, `9c`, `9d`, `9e`, `82`–`95`) and the data object holding its certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot(pub u8);

impl Slot {
    pub fn parse(s: &str) -> Result<Self> {
        let b = u8::from_str_radix(s, 16).map_err(|_| anyhow!("'{s}' is not a PIV slot"))?;
        match b {
            0x9a | 0x9c | 0x9d | 0x9e | 0x82..=0x95 => Ok(Slot(b)),
            _ => bail!("'{s}' is not a PIV key slot (9a, 9c, 9d, 9e, 82-95)"),
        }
    }

    fn certificate_object(self) -> [u8; 3] {
        let last = match self.0 {
            0x9a => 0x05,
            0x9c => 0x0a,
            0x9d => 0x0b,
            0x9e => 0x01,
            // Retired key-management slots 82..95 hold their certificates in 5FC10D..5FC120.
            n => n - 0x82 + 0x0d,
        };
        [0x5f, 0xc1, last]
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02x}", self.0)
    }
}

fn pad_pin(pin: &str) -> Result<[u8; 8]> {
    let b = pin.as_bytes();
    if b.is_empty() || b.len() > 8 {
        bail!("a PIV PIN or PUK has 1 to 8 characters");
    }
    let mut out = [0xff; 8];
    out[..b.len()].copy_from_slice(b);
    Ok(out)
}

pub struct Piv {
    t: Transport,
}

impl Piv {
    /// Selects the PIV application on the card.
    pub fn select(t: Transport) -> Result<Self> {
        t.send(0x00, 0xa4, 0x04, 0x00, &PIV_AID)
            .context("select the PIV application")?;
        Ok(Piv { t })
    }

    fn get_data(&self, object: &[u8]) -> Result<Vec<u8>> {
        let answer = self
            .t
            .send(0x00, 0xcb, 0x3f, 0xff, &encode(&[0x5c], object))?;
        tlv(&answer, &[0x53])
            .map(<[u8]>::to_vec)
            .ok_or_else(|| anyhow!("the card's data object has no 53 tag"))
    }

    /// The card id: the GUID of the CHUID (tag 34), as Windows and MIM name PIV cards.
    pub fn card_id(&self) -> Result<String> {
        let chuid = self
            .get_data(&[0x5f, 0xc1, 0x02])
            .context("read the CHUID")?;
        let g = tlv(&chuid, &[0x34])
            .filter(|g| g.len() == 16)
            .ok_or_else(|| anyhow!("the CHUID has no 16-byte GUID (tag 34)"))?;
        let h = hex::encode(g);
        Ok(format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        ))
    }

    /// Starts authenticating as card administrator: the card's challenge, for the server (which
    /// holds the key) to answer.
    pub fn admin_challenge(&self, alg: AdminAlgorithm) -> Result<Vec<u8>> {
        let witness = self
            .t
            .send(
                0x00,
                0x87,
                alg.id(),
                ADMIN_KEY_REF,
                &[0x7c, 0x02, 0x81, 0x00],
            )
            .context("ask the card for an admin challenge")?;
        tlv(&witness, &[0x7c])
            .and_then(|t| tlv(t, &[0x81]))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| anyhow!("the card's admin challenge has no 81 tag"))
    }

    /// Completes it with the server's answer: E(admin key, challenge).
    pub fn admin_answer(&self, alg: AdminAlgorithm, response: &[u8]) -> Result<()> {
        self.t
            .send(
                0x00,
                0x87,
                alg.id(),
                ADMIN_KEY_REF,
                &encode(&[0x7c], &encode(&[0x82], response)),
            )
            .context("answer the card's admin challenge")?;
        Ok(())
    }

    /// Generates a key pair in `slot` (needs admin); returns the public key as the point the
    /// card gives (uncompressed, `04 || X || Y`).
    pub fn generate(&self, slot: Slot, alg: KeyAlgorithm) -> Result<Vec<u8>> {
        let template = encode(&[0xac], &encode(&[0x80], &[alg.id()]));
        let answer = self
            .t
            .send(0x00, 0x47, 0x00, slot.0, &template)
            .with_context(|| format!("generate a key in slot {slot}"))?;
        let point = tlv(&answer, &[0x7f, 0x49])
            .and_then(|t| tlv(t, &[0x86]))
            .ok_or_else(|| anyhow!("the generated public key has no 86 tag"))?;
        Ok(point.to_vec())
    }

    pub fn verify_pin(&self, pin: &str) -> Result<()> {
        self.t
            .send(0x00, 0x20, 0x00, PIN_REF, &pad_pin(pin)?)
            .context("verify the PIN")?;
        Ok(())
    }

    /// Signs a digest with the key in `slot` (the PIN verified first); returns the DER ECDSA
    /// signature the card makes.
    pub fn sign_digest(&self, slot: Slot, alg: KeyAlgorithm, digest: &[u8]) -> Result<Vec<u8>> {
        let body = [encode(&[0x82], &[]), encode(&[0x81], digest)].concat();
        let answer = self
            .t
            .send(0x00, 0x87, alg.id(), slot.0, &encode(&[0x7c], &body))
            .with_context(|| format!("sign with the key in slot {slot}"))?;
        tlv(&answer, &[0x7c])
            .and_then(|t| tlv(t, &[0x82]))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| anyhow!("the card's signature has no 82 tag"))
    }

    /// Writes `der` as the certificate of `slot` (needs admin).
    pub fn put_certificate(&self, slot: Slot, der: &[u8]) -> Result<()> {
        let object = [
            encode(&[0x70], der),
            encode(&[0x71], &[0x00]),
            encode(&[0xfe], &[]),
        ]
        .concat();
        let data = [
            encode(&[0x5c], &slot.certificate_object()),
            encode(&[0x53], &object),
        ]
        .concat();
        self.t
            .send(0x00, 0xdb, 0x3f, 0xff, &data)
            .with_context(|| format!("write the certificate of slot {slot}"))?;
        Ok(())
    }

    /// Replaces the admin key (needs admin): the Yubico extension INS FF, which current PIV
    /// tokens implement.
    pub fn set_admin_key(&self, alg: AdminAlgorithm, key: &[u8]) -> Result<()> {
        if key.len() != alg.key_len() {
            bail!(
                "the new admin key has {} bytes; a {alg:?} key has {}",
                key.len(),
                alg.key_len()
            );
        }
        let mut data = vec![alg.id(), ADMIN_KEY_REF, key.len() as u8];
        data.extend_from_slice(key);
        self.t
            .send(0x00, 0xff, 0xff, 0xff, &data)
            .context("set the card's admin key")?;
        Ok(())
    }

    /// Replaces the PUK (needs the current one).
    pub fn change_puk(&self, old: &str, new: &str) -> Result<()> {
        let data = [pad_pin(old)?, pad_pin(new)?].concat();
        self.t
            .send(0x00, 0x24, 0x00, PUK_REF, &data)
            .context("change the PUK")?;
        Ok(())
    }

    /// Unblocks the PIN with the PUK (RESET RETRY COUNTER) and sets `new_pin`.
    pub fn unblock_pin(&self, puk: &str, new_pin: &str) -> Result<()> {
        let data = [pad_pin(puk)?, pad_pin(new_pin)?].concat();
        self.t
            .send(0x00, 0x2c, 0x00, PIN_REF, &data)
            .context("unblock the PIN with the PUK")?;
        Ok(())
    }

    /// Erases the PIV application — keys, certificates, PIN, PUK and admin key back to the
    /// factory's — with the Yubico RESET extension, which tokens accept only once both the PIN
    /// and the PUK are blocked: they are blocked first, by wrong tries. `Ok(false)`: the token
    /// has no such command.
    pub fn reset(&self) -> Result<bool> {
        // Two guesses, so that a guess that happens to be right is followed by a wrong one.
        let guesses = [*b"99999999", *b"99999998"];
        for (reference, what) in [(PIN_REF, "PIN"), (PUK_REF, "PUK")] {
            let mut blocked = false;
            for i in 0..32 {
                let guess = guesses[i % 2];
                let r = if reference == PIN_REF {
                    self.t.send(0x00, 0x20, 0x00, PIN_REF, &guess)
                } else {
                    self.t
                        .send(0x00, 0x2c, 0x00, PIN_REF, &[guess, guess].concat())
                };
                match r.err().map(|e| e.downcast::<StatusWord>()) {
                    // Blocked, or no tries left (some tokens answer 63C0 then).
                    Some(Ok(StatusWord(0x6983 | 0x63c0))) => {
                        blocked = true;
                        break;
                    }
                    Some(Ok(StatusWord(s))) if s & 0xfff0 == 0x63c0 => {}
                    Some(Ok(sw)) => bail!("blocking the {what} before the reset: {sw}"),
                    Some(Err(e)) => return Err(e),
                    // The guess was right: the other one is not.
                    None => {}
                }
            }
            if !blocked {
                bail!("the {what} did not block after 32 wrong tries");
            }
        }
        match self.t.send(0x00, 0xfb, 0x00, 0x00, &[]) {
            Ok(_) => Ok(true),
            Err(e)
                if e.downcast_ref::<StatusWord>()
                    .is_some_and(|s| matches!(s.0, 0x6d00 | 0x6e00)) =>
            {
                Ok(false)
            }
            Err(e) => Err(e.context("reset the PIV application")),
        }
    }

    pub fn change_pin(&self, old: &str, new: &str) -> Result<()> {
        let data = [pad_pin(old)?, pad_pin(new)?].concat();
        self.t
            .send(0x00, 0x24, 0x00, PIN_REF, &data)
            .context("change the PIN")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_map_to_their_certificate_objects() {
        assert_eq!(
            Slot::parse("9a").unwrap().certificate_object(),
            [0x5f, 0xc1, 0x05]
        );
        assert_eq!(
            Slot::parse("9E").unwrap().certificate_object(),
            [0x5f, 0xc1, 0x01]
        );
        assert_eq!(
            Slot::parse("82").unwrap().certificate_object(),
            [0x5f, 0xc1, 0x0d]
        );
        assert_eq!(
            Slot::parse("95").unwrap().certificate_object(),
            [0x5f, 0xc1, 0x20]
        );
        assert!(Slot::parse("9b").is_err() && Slot::parse("zz").is_err());
    }

    #[test]
    fn pins_are_padded_with_ff_to_eight_bytes() {
        assert_eq!(pad_pin("123456").unwrap(), *b"123456\xff\xff");
        assert!(pad_pin("").is_err() && pad_pin("123456789").is_err());
    }
}
