//! `opencm-card enroll`: MIM's enrolment flow on a PIV card, step by step. Every step says what it
//! does; a failure names the step and the card's status word or the server's error. Once the card
//! is bound, a failure abandons the request, so the server retires the half-enrolled card and the
//! request can be started again.

use crate::piv::{AdminAlgorithm, Piv};
use crate::server::Server;
use crate::session::{OnCard, Step};
use crate::{apdu, Inserted};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

pub async fn enroll(
    srv: &Server,
    inserted: Inserted,
    request: &str,
    pin: Option<&str>,
) -> Result<()> {
    let started = std::time::Instant::now();
    let mut step = Step(0, 11);
    step.say("reading the request and its template's card configuration");
    let r = srv.request(request).await.context("read the request")?;
    let status = r["Status"].as_i64().unwrap_or(0);
    if status != 3 {
        bail!("request {request} is not Approved (Status {status}); it cannot be executed now");
    }
    let template = r["ProfileTemplateUuid"]
        .as_str()
        .ok_or_else(|| anyhow!("the request names no template"))?
        .to_string();
    let config = srv
        .card_configuration(&template)
        .await
        .context("read the template's card configuration")?;
    let admin_alg =
        AdminAlgorithm::from_name(config["AdminKeyAlgorithm"].as_str().unwrap_or("tdes"))?;

    step.say(&format!("reading the card in '{}'", inserted.reader));
    let atr = hex::encode(&inserted.atr);
    let piv = Piv::select(apdu::Transport::new(inserted.card))?;
    let card_id = piv.card_id()?;
    println!("      PIV card {card_id}, ATR {atr}");

    step.say("binding the card to the request");
    let card = srv
        .bind(request, &card_id, &atr)
        .await
        .context("bind the card (POST /smartcards)")?;
    println!("      smart card {card} on the server");

    let on = OnCard {
        srv,
        piv: &piv,
        request,
        card: &card,
        card_id: &card_id,
        alg: admin_alg,
    };
    let rest = personalise(&on, &mut step, &config, pin).await;
    match rest {
        Ok(pin) => {
            step.say("completing the request");
            srv.finish(request, "Completed")
                .await
                .context("complete the request")?;
            let total = started.elapsed();
            let server = srv.waited();
            println!(
                "done in {:.0} ms ({:.0} ms waiting for the server, {:.0} ms on the card and in this client): card {card_id} is enrolled and Active.",
                total.as_secs_f64() * 1000.0,
                server.as_secs_f64() * 1000.0,
                total.saturating_sub(server).as_secs_f64() * 1000.0
            );
            if let Some(pin) = pin {
                println!("The card's PIN is {pin} (keep it secret).");
            }
            Ok(())
        }
        Err(e) => {
            // The card is bound and perhaps half personalised: give the request up, so the server
            // retires this card record and the enrolment can start again.
            match srv.finish(request, "Abandoned").await {
                Ok(_) => eprintln!(
                    "the request was abandoned; the server retired the half-enrolled card"
                ),
                Err(a) => eprintln!("abandoning the request failed too: {a:#}"),
            }
            Err(e)
        }
    }
}

/// Everything between binding and completing; returns the PIN to tell the user, if the server
/// chose one.
async fn personalise(
    on: &OnCard<'_>,
    step: &mut Step,
    config: &Value,
    pin: Option<&str>,
) -> Result<Option<String>> {
    let (srv, piv, request, card, card_id) = (on.srv, on.piv, on.request, on.card, on.card_id);
    step.say("authenticating as card administrator with the factory key, through the server");
    on.authenticate_admin(false)
        .await
        .context("the card refused the factory admin key")?;
    let factory_pin = pin
        .map(str::to_string)
        .or_else(|| {
            config["UserPinPolicy"]["DefaultValue"]
                .as_str()
                .map(str::to_string)
        })
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "123456".into());
    on.issue(step, &factory_pin).await?;

    if config["DiversifyAdminKey"].as_bool().unwrap_or(true) {
        step.say("replacing the factory admin key with the card's own");
        let key = srv
            .diversified_key(request, card, card_id)
            .await
            .context("get the card's admin key")?;
        piv.set_admin_key(on.alg, &key)?;
        // Prove the card now answers to its own key, through the server again.
        on.authenticate_admin(true)
            .await
            .context("the card does not answer to its new admin key")?;
    } else {
        step.say("keeping the template's default admin key (DiversifyAdminKey is off)");
    }

    step.say("setting the PIN");
    // UserPinOption: 2 ServerDistributed, 3 Randomized, 4 CustomServerDistributed.
    let new_pin = match config["UserPinOption"].as_i64() {
        Some(2..=4) => {
            let p = srv
                .proposed_pin(request, card, card_id)
                .await
                .context("get the PIN the server proposes")?;
            piv.change_pin(&factory_pin, &p)?;
            Some(p)
        }
        _ => {
            println!(
                "      the template leaves the PIN to the user: change it with your token's tools"
            );
            None
        }
    };

    step.say("replacing the factory PUK with the card's own (the helpdesk unblocks with it)");
    let factory_puk = config["AdminPinPolicy"]["DefaultValue"]
        .as_str()
        .filter(|p| !p.is_empty())
        .unwrap_or("12345678");
    let puk = srv
        .puk(request, card, card_id)
        .await
        .context("get the card's PUK")?;
    piv.change_puk(factory_puk, &puk)
        .context("the card refused its factory PUK (the template's AdminPinPolicy DefaultValue)")?;
    Ok(new_pin)
}
