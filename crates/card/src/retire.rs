//! `opencm-card retire`: MIM's retirement — the card set Retired during the request, the request
//! completed (the server revokes the card's certificates) — and, when the template asks, the
//! card's PIV application reset as far as the token allows, so it can be handed out again.

use crate::piv::Piv;
use crate::server::Server;
use crate::{apdu, Inserted};
use anyhow::{anyhow, bail, Context, Result};

pub async fn retire(srv: &Server, inserted: Inserted, request: &str) -> Result<()> {
    println!("[1/4] reading the request and the card it retires");
    let r = srv.request(request).await.context("read the request")?;
    let t = r["RequestType"].as_i64().unwrap_or(0);
    if t != 7 && t != 14 {
        bail!("request {request} is not a Retire or a TemporaryCardRetire (RequestType {t})");
    }
    let card = r["NewSmartcardUuid"]
        .as_str()
        .filter(|c| !c.starts_with("00000000-"))
        .ok_or_else(|| anyhow!("request {request} names no card"))?
        .to_string();
    let on_server = srv.card(&card).await.context("read the card")?;
    let template = r["ProfileTemplateUuid"].as_str().unwrap_or_default();
    let config = srv.card_configuration(template).await?;

    println!(
        "[2/4] checking the card in '{}' is that card",
        inserted.reader
    );
    let piv = Piv::select(apdu::Transport::new(inserted.card))?;
    let card_id = piv.card_id()?;
    let serial = on_server["SerialNumber"].as_str().unwrap_or_default();
    if !serial.eq_ignore_ascii_case(&format!("{{{card_id}}}")) {
        bail!("the card in the reader is {card_id}; request {request} retires {serial}");
    }

    println!("[3/4] retiring it on the server");
    srv.set_card_status(request, &card, "Retired")
        .await
        .context("set the card Retired")?;
    srv.finish(request, "Completed")
        .await
        .context("complete the request")?;

    if config["ResetOnRetire"].as_bool().unwrap_or(true) {
        println!("[4/4] resetting the card's PIV application");
        match piv.reset()? {
            true => println!("card {card_id} is retired and reset: keys, certificates and PINs erased."),
            false => println!("card {card_id} is retired; this token cannot be reset over PIV (erase it with its vendor's tool)."),
        }
    } else {
        println!("[4/4] leaving the card as it is (the template does not reset retired cards)");
        println!("card {card_id} is retired.");
    }
    Ok(())
}
