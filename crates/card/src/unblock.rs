//! `opencm-card unblock`: a PIN blocked by wrong tries is unblocked with the card's PUK, which
//! the server releases to the executor of an approved Unblock request on that card, with a new
//! PIN the server proposes. A failure changes nothing on the server: run it again.

use crate::piv::Piv;
use crate::server::Server;
use crate::{apdu, Inserted};
use anyhow::{anyhow, bail, Context, Result};

pub async fn unblock(srv: &Server, inserted: Inserted, request: &str) -> Result<()> {
    println!("[1/4] reading the request");
    let r = srv.request(request).await.context("read the request")?;
    let t = r["RequestType"].as_i64().unwrap_or(0);
    if t != 5 && t != 12 {
        bail!("request {request} is not an Unblock (RequestType {t})");
    }
    let card = r["NewSmartcardUuid"]
        .as_str()
        .filter(|c| !c.starts_with("00000000-"))
        .ok_or_else(|| anyhow!("request {request} names no card"))?
        .to_string();

    println!("[2/4] reading the card in '{}'", inserted.reader);
    let piv = Piv::select(apdu::Transport::new(inserted.card))?;
    let card_id = piv.card_id()?;

    println!("[3/4] unblocking the PIN with the card's PUK and setting a new PIN");
    let puk = srv
        .puk(request, &card, &card_id)
        .await
        .context("get the card's PUK (is this the request's card?)")?;
    let pin = srv
        .proposed_pin(request, &card, &card_id)
        .await
        .context("get the new PIN the server proposes")?;
    piv.unblock_pin(&puk, &pin)?;

    println!("[4/4] completing the request");
    srv.finish(request, "Completed")
        .await
        .context("complete the request")?;
    println!("card {card_id} is unblocked. Its new PIN is {pin} (keep it secret).");
    Ok(())
}
