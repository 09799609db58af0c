//! `opencm-card update`: an OnlineUpdate (or a Renew that stays on the card) puts the template's
//! current certificates on the card in place of the old ones — new keys made on the card, the
//! admin authentication answered by the server with the card's own key.

use crate::piv::{AdminAlgorithm, Piv};
use crate::server::Server;
use crate::session::{OnCard, Step};
use crate::{apdu, Inserted};
use anyhow::{anyhow, bail, Context, Result};

pub async fn update(srv: &Server, inserted: Inserted, request: &str, pin: &str) -> Result<()> {
    let mut step = Step(0, 7);
    step.say("reading the request and its template's card configuration");
    let r = srv.request(request).await.context("read the request")?;
    let t = r["RequestType"].as_i64().unwrap_or(0);
    if t != 10 && t != 3 {
        bail!("request {request} is not an OnlineUpdate or a Renew (RequestType {t})");
    }
    let card = r["NewSmartcardUuid"]
        .as_str()
        .filter(|c| !c.starts_with("00000000-"))
        .ok_or_else(|| {
            anyhow!("request {request} binds a new card: enrol that card with `enroll --request`")
        })?
        .to_string();
    let template = r["ProfileTemplateUuid"].as_str().unwrap_or_default();
    let config = srv.card_configuration(template).await?;
    let alg = AdminAlgorithm::from_name(config["AdminKeyAlgorithm"].as_str().unwrap_or("tdes"))?;

    step.say(&format!("reading the card in '{}'", inserted.reader));
    let piv = Piv::select(apdu::Transport::new(inserted.card))?;
    let card_id = piv.card_id()?;

    step.say("authenticating as card administrator with the card's own key, through the server");
    let on = OnCard {
        srv,
        piv: &piv,
        request,
        card: &card,
        card_id: &card_id,
        alg,
    };
    on.authenticate_admin(config["DiversifyAdminKey"].as_bool().unwrap_or(true))
        .await
        .context("the card refused its admin key (is this the request's card?)")?;
    on.issue(&mut step, pin).await?;

    step.say("completing the request");
    srv.finish(request, "Completed")
        .await
        .context("complete the request")?;
    println!("card {card_id} holds its new certificates; the old ones are revoked as superseded.");
    Ok(())
}
