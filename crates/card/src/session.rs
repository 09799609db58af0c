//! One card executing one request: the steps `enroll` and `update` share — admin authentication
//! answered by the server, and certificates issued onto keys the card makes.

use crate::csr;
use crate::piv::{AdminAlgorithm, KeyAlgorithm, Piv, Slot};
use crate::server::{unb64, Server};
use anyhow::{anyhow, bail, Context, Result};

/// The slots keys go to when the template names none, in PIV's order.
const DEFAULT_SLOTS: [u8; 4] = [0x9a, 0x9c, 0x9d, 0x9e];

/// Numbered progress lines.
pub struct Step(pub usize, pub usize);

impl Step {
    pub fn say(&mut self, what: &str) {
        self.0 += 1;
        println!("[{}/{}] {what}", self.0, self.1);
    }
}

pub struct OnCard<'a> {
    pub srv: &'a Server,
    pub piv: &'a Piv,
    pub request: &'a str,
    /// The card's uuid on the server.
    pub card: &'a str,
    /// The card's own id (its CHUID GUID).
    pub card_id: &'a str,
    pub alg: AdminAlgorithm,
}

impl OnCard<'_> {
    /// Authenticates as card administrator: the card's challenge goes to the server, which
    /// answers with the template's factory key or (`diversified`) the card's own.
    pub async fn authenticate_admin(&self, diversified: bool) -> Result<()> {
        let challenge = self.piv.admin_challenge(self.alg)?;
        let answer = self
            .srv
            .admin_response(
                self.request,
                self.card,
                self.card_id,
                &challenge,
                diversified,
            )
            .await
            .context("get the admin challenge's answer")?;
        self.piv.admin_answer(self.alg, &answer)
    }

    /// Makes a key on the card for each generation option (in its template's slot), has the
    /// card sign a request for each with `pin` verified, sends them, and writes the certificates
    /// back to their slots. Needs admin authentication first.
    pub async fn issue(&self, step: &mut Step, pin: &str) -> Result<()> {
        step.say("generating the keys on the card");
        let options = self
            .srv
            .generation_options(self.request)
            .await
            .context("read the generation options")?;
        let mut keys = Vec::new();
        for (i, o) in options.iter().enumerate() {
            let slot = match o["PivSlot"].as_str() {
                Some(s) => Slot::parse(s)?,
                None => Slot(
                    *DEFAULT_SLOTS
                        .get(i)
                        .ok_or_else(|| anyhow!("more than four keys and no slots named"))?,
                ),
            };
            let alg = KeyAlgorithm::from_mim(o["KeyAlgorithmName"].as_str().unwrap_or(""))?;
            let point = self.piv.generate(slot, alg)?;
            println!(
                "      {} key in slot {slot}",
                o["KeyAlgorithmName"].as_str().unwrap_or("?")
            );
            keys.push((slot, alg, point));
        }

        step.say("signing the certificate requests with the card keys");
        self.piv
            .verify_pin(pin)
            .context("the card refused its current PIN (give it with --pin)")?;
        let mut csrs = Vec::new();
        for (slot, alg, point) in &keys {
            csrs.push(csr::request(self.piv, *slot, *alg, point.clone())?);
        }

        step.say("having them certified and writing the certificates to the card");
        let responses = self
            .srv
            .certificate_data(self.request, &csrs)
            .await
            .context("send the certificate requests")?;
        if responses.len() != keys.len() {
            bail!(
                "the server answered {} certificates for {} requests",
                responses.len(),
                keys.len()
            );
        }
        for ((slot, _, _), resp) in keys.iter().zip(&responses) {
            let p7 = unb64(resp["Pkcs7"].as_str().unwrap_or_default())?;
            let leaf = csr::leaf_of_pkcs7(&p7)?;
            self.piv.put_certificate(*slot, &leaf)?;
            println!(
                "      {} in slot {slot}",
                resp["TemplateCommonName"].as_str().unwrap_or("?")
            );
        }
        Ok(())
    }
}
