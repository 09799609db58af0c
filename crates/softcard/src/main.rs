//! `opencm-softcard`: a PIV card in software, inserted into the virtual reader of `pcscd`
//! (vsmartcard's `vpcd`, listening on 127.0.0.1:35963) so that every PC/SC program — OpenSC,
//! `opencm card` — sees a real card in a real reader.
//!
//! The card is Nitrokey's PIV applet (`piv-authenticator`, as published) on trussed's virtual
//! platform, with its state in RAM: a fresh card at every start, with the factory PIN 123456, PUK
//! 12345678 and management key 010203…08. What no published crate does is written here: the
//! trussed dispatcher that gives the applet the backends it needs (PIN handling from
//! `trussed-auth-backend`; chunked files, key wrapping and HPKE from `trussed-staging`), and the
//! ISO 7816 transport a reader expects — command chaining (CLA bit 5) and long answers handed out
//! 256 bytes at a time through GET RESPONSE (`61xx`).
//!
//! Usage: `opencm-softcard [CHUID-GUID]` (default `0c9a3f5e-7b1d-4a2e-9f60-5d8c4b3a2e10`): the
//! card id the card's CHUID carries, so tests know it in advance.

mod dispatch;
mod transport;

use piv_authenticator::{Authenticator, Options};

const DEFAULT_CARD_ID: &str = "0c9a3f5e-7b1d-4a2e-9f60-5d8c4b3a2e10";

fn parse_guid(s: &str) -> Option<[u8; 16]> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn main() {
    let arg = std::env::args().nth(1);
    let card_id = arg.as_deref().unwrap_or(DEFAULT_CARD_ID);
    let Some(uuid) = parse_guid(card_id) else {
        eprintln!("opencm-softcard: '{card_id}' is not a GUID");
        std::process::exit(2);
    };
    let port = std::env::var("VPCD_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(vpicc::DEFAULT_PORT);
    dispatch::with_client(|client| {
        let applet = Authenticator::new(client, Options::default().uuid(Some(uuid)));
        let mut card = transport::Card::new(applet);
        // vpcd may not be up yet when the test stack starts us: retry for a few seconds.
        let mut tries = 0;
        let connection = loop {
            match vpicc::connect_socket(format!("127.0.0.1:{port}")) {
                Ok(c) => break c,
                Err(e) if tries < 50 => {
                    tries += 1;
                    log::debug!("vpcd not reachable yet: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => {
                    eprintln!("opencm-softcard: cannot reach vpcd on 127.0.0.1:{port}: {e}");
                    std::process::exit(1);
                }
            }
        };
        println!("opencm-softcard: card {card_id} inserted into vpcd on 127.0.0.1:{port}");
        if let Err(e) = connection.run(&mut card) {
            eprintln!("opencm-softcard: vpcd connection ended: {e}");
            std::process::exit(1);
        }
    });
}
