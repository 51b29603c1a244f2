//! Payments: the provider interface, the built-in provider simulator, signed callbacks, and the
//! sweeps that expire unpaid checkouts and confirm delivered orders after the auto-confirm
//! period.
//!
//! A provider callback is an HTTP POST whose body is JSON and whose headers carry
//! `x-callback-timestamp` (unix seconds) and `x-callback-signature: v1=<hex HMAC-SHA256 of
//! "{timestamp}.{body}" under the provider's shared secret>`. A callback is applied only if the
//! signature is right and the timestamp within the tolerance (replays of old captures fail);
//! whatever happens, it is recorded with its outcome.

use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use jembatan_domain::{
    CheckoutRequest, DomainError, Money, OrderAction, PaymentId, PaymentInstructions, PaymentMethod,
    Principal, Timestamp, TypedId, qris,
};
use jembatan_store::orders::CheckoutRecord;
use jembatan_store::payments::{CallbackOutcome, CallbackResult, NewPayment, PaymentNotice, PaymentRecord};
use jembatan_store::{Idem, WriteCtx};
use sha2::Sha256;

use crate::{Core, CoreError, authz, authz::Access};

pub const TIMESTAMP_HEADER: &str = "x-callback-timestamp";
pub const SIGNATURE_HEADER: &str = "x-callback-signature";

/// Settings of the payment flow.
#[derive(Clone)]
pub struct PaymentSettings {
    /// An unpaid checkout expires after this long.
    pub payment_ttl_ms: i64,
    /// A delivered order the buyer did not confirm is confirmed after this long.
    pub auto_confirm_after_ms: i64,
    /// Callbacks whose timestamp is further than this from our clock are refused.
    pub callback_tolerance_s: i64,
}

impl Default for PaymentSettings {
    fn default() -> Self {
        PaymentSettings {
            payment_ttl_ms: 60 * 60 * 1000,
            auto_confirm_after_ms: 2 * 24 * 60 * 60 * 1000,
            callback_tolerance_s: 300,
        }
    }
}

/// Why a callback was refused before it reached a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub outcome: CallbackOutcome,
    pub detail: String,
}

/// A payment gateway as the core sees it. Real gateways (Xendit, Midtrans, DOKU, …) plug in
/// behind this; [`SimulatedProvider`] is the built-in one.
pub trait PaymentProvider: Send + Sync {
    /// The provider's name, stored with each payment.
    fn name(&self) -> &str;

    /// What the buyer needs to pay `amount` by `method` (called inside the checkout's unit: it
    /// must not block; a gateway needing a network call issues its instructions after commit).
    fn instruct(
        &self,
        method: PaymentMethod,
        payment: PaymentId,
        amount: Money,
    ) -> Result<PaymentInstructions, DomainError>;

    /// Checks a callback's signature and timestamp and reads its body.
    fn verify_callback(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: Timestamp,
    ) -> Result<PaymentNotice, Refusal>;
}

/// The provider simulator: issues VA numbers, dynamic QRIS payloads and e-wallet references
/// like a real gateway, and sends signed callbacks when told a payment was paid
/// (`jembatan provider pay`).
pub struct SimulatedProvider {
    secret: Vec<u8>,
    tolerance_s: i64,
}

impl SimulatedProvider {
    pub const NAME: &'static str = "simulator";
    /// The simulated bank of virtual accounts (BCA's code) and the company prefix of our VAs.
    pub const VA_BANK_CODE: &'static str = "014";
    const VA_PREFIX: &'static str = "39001";

    pub fn new(secret: Vec<u8>, tolerance_s: i64) -> SimulatedProvider {
        SimulatedProvider { secret, tolerance_s }
    }

    /// The shared secret (tests and the command line sign requests with it).
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// The headers of a callback with `body` sent at `at`.
    pub fn sign(&self, body: &str, at: Timestamp) -> (String, String) {
        let timestamp = (at.unix_ms() / 1000).to_string();
        (timestamp.clone(), sign(&self.secret, &timestamp, body.as_bytes()))
    }

    /// The body of a "paid" callback for a payment.
    pub fn paid_body(payment: &PaymentRecord, amount: Money, at: Timestamp) -> String {
        serde_json::json!({
            "event": "payment.paid",
            "payment_id": payment.id.to_string(),
            "provider_ref": payment.instructions.provider_ref,
            "amount": amount.rupiah(),
            "paid_at_ms": at.unix_ms(),
        })
        .to_string()
    }
}

/// What a request to the simulator's pay route signs: its method and path with the body, so a
/// captured request cannot be replayed against another payment.
pub fn simulator_request_message(payment_id: &str, body: &[u8]) -> Vec<u8> {
    let mut message = format!("POST /v1/provider-sim/payments/{payment_id}/pay\n").into_bytes();
    message.extend_from_slice(body);
    message
}

/// `v1=` and the hex HMAC-SHA256 of `"{timestamp}.{body}"`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any size");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a signature in constant time.
fn signature_matches(secret: &[u8], timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Some(given) = signature.strip_prefix("v1=").and_then(|h| hex::decode(h).ok()) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any size");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

impl SimulatedProvider {
    /// The simulator's instructions for a payment.
    pub fn instructions(
        &self,
        method: PaymentMethod,
        payment: PaymentId,
        amount: Money,
    ) -> Result<PaymentInstructions, DomainError> {
        // The reference is the payment's own random bits: unique, and nothing to look up.
        let bits = payment.uuid().as_u128();
        let provider_ref = format!("SIM{:026X}", bits & ((1u128 << 104) - 1));
        let mut instructions =
            PaymentInstructions { provider_ref: provider_ref.clone(), ..Default::default() };
        match method {
            PaymentMethod::VirtualAccount => {
                // Company prefix + 11 digits of the payment's random bits.
                let digits = (bits & ((1u128 << 64) - 1)) % 100_000_000_000;
                instructions.bank_code = Some(Self::VA_BANK_CODE.to_owned());
                instructions.va_number = Some(format!("{}{digits:011}", Self::VA_PREFIX));
            }
            PaymentMethod::Qris => {
                let payload = qris::encode(&qris::Qris {
                    point_of_initiation: "12".to_owned(),
                    nmid: "ID1026270000001".to_owned(),
                    criteria: "UBE".to_owned(),
                    merchant_category_code: "5399".to_owned(),
                    amount: Some(amount),
                    merchant_name: "JEMBATAN".to_owned(),
                    merchant_city: "JAKARTA".to_owned(),
                    bill_number: Some(provider_ref[..20].to_owned()),
                })?;
                instructions.qris_payload = Some(payload);
            }
            PaymentMethod::Ewallet => {
                instructions.ewallet_ref = Some(provider_ref.clone());
                // The simulated wallet app's deep link (a real wallet returns its own).
                instructions.redirect_url =
                    Some(format!("simwallet://pay?ref={provider_ref}&amount={}", amount.rupiah()));
            }
            PaymentMethod::CashOnDelivery => {}
        }
        Ok(instructions)
    }

    /// Checks the signature and the timestamp's tolerance of a signed request.
    pub fn verify_signature(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: Timestamp,
    ) -> Result<(), Refusal> {
        let refuse = |outcome, detail: &str| Refusal { outcome, detail: detail.to_owned() };
        let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
            return Err(refuse(
                CallbackOutcome::RefusedSignature,
                "the x-callback-timestamp and x-callback-signature headers are required",
            ));
        };
        if !signature_matches(&self.secret, timestamp, body, signature) {
            return Err(refuse(CallbackOutcome::RefusedSignature, "the signature does not match the body"));
        }
        let Ok(seconds) = timestamp.parse::<i64>() else {
            return Err(refuse(CallbackOutcome::RefusedTimestamp, "the timestamp is not unix seconds"));
        };
        if (now.unix_ms() / 1000 - seconds).abs() > self.tolerance_s {
            return Err(Refusal {
                outcome: CallbackOutcome::RefusedTimestamp,
                detail: format!(
                    "the timestamp is more than {} s from the server's clock; a captured callback cannot be replayed",
                    self.tolerance_s
                ),
            });
        }
        Ok(())
    }
}

impl PaymentProvider for SimulatedProvider {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn instruct(
        &self,
        method: PaymentMethod,
        payment: PaymentId,
        amount: Money,
    ) -> Result<PaymentInstructions, DomainError> {
        self.instructions(method, payment, amount)
    }

    fn verify_callback(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: Timestamp,
    ) -> Result<PaymentNotice, Refusal> {
        self.verify_signature(timestamp, signature, body, now)?;
        let refuse = |outcome, detail: &str| Refusal { outcome, detail: detail.to_owned() };
        let body_text = String::from_utf8_lossy(body).into_owned();
        let malformed = |detail: &str| refuse(CallbackOutcome::RefusedMalformed, detail);
        let json: serde_json::Value =
            serde_json::from_slice(body).map_err(|_| malformed("the body is not JSON"))?;
        if json.get("event").and_then(|e| e.as_str()) != Some("payment.paid") {
            return Err(malformed("event must be payment.paid"));
        }
        let payment_id = match json.get("payment_id").and_then(|v| v.as_str()) {
            Some(raw) => {
                Some(raw.parse::<PaymentId>().map_err(|_| malformed("payment_id is not a payment id"))?)
            }
            None => None,
        };
        let provider_ref = json.get("provider_ref").and_then(|v| v.as_str()).map(str::to_owned);
        if payment_id.is_none() && provider_ref.is_none() {
            return Err(malformed("payment_id or provider_ref is required"));
        }
        let amount = match json.get("amount") {
            Some(v) => Some(
                v.as_i64()
                    .and_then(|n| Money::from_rupiah(n).ok())
                    .ok_or_else(|| malformed("amount must be a whole number of rupiah"))?,
            ),
            None => None,
        };
        Ok(PaymentNotice {
            provider: Self::NAME.to_owned(),
            payment_id,
            provider_ref,
            amount,
            body: body_text,
        })
    }
}

/// What a callback's sender is told.
#[derive(Debug, Clone)]
pub struct CallbackAnswer {
    pub outcome: CallbackOutcome,
    pub detail: String,
    pub payment: Option<PaymentRecord>,
}

impl Core {
    pub fn provider(&self) -> &Arc<dyn PaymentProvider> {
        &self.provider
    }

    pub fn payment_settings(&self) -> &PaymentSettings {
        &self.payments
    }

    pub(crate) fn new_payment(&self, request: &CheckoutRequest) -> NewPayment {
        let provider = Arc::clone(&self.provider);
        let method = request.payment_method;
        NewPayment {
            provider: provider.name().to_owned(),
            ttl_ms: self.payments.payment_ttl_ms,
            instruct: Box::new(move |id, amount| provider.instruct(method, id, amount)),
        }
    }

    /// A provider callback as received: verified, then applied by the one completion path.
    /// Every callback is recorded, refused ones with their reason.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn payment_callback(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<CallbackAnswer, CoreError> {
        let ctx = WriteCtx { actor: Principal::Provider, now: self.clock().now() };
        match self.provider.verify_callback(timestamp, signature, body, ctx.now) {
            Ok(notice) => {
                let CallbackResult { outcome, detail, payment, .. } =
                    self.store().complete_payment(ctx, notice).await?;
                if outcome != CallbackOutcome::Applied {
                    tracing::info!(outcome = outcome.as_str(), %detail, "payment callback changed nothing");
                }
                Ok(CallbackAnswer { outcome, detail, payment })
            }
            Err(refusal) => {
                // Refused before anything could be matched (no valid signature, a stale
                // timestamp): logged and counted, not written, so unauthenticated requests
                // cannot fill the store or the audit log. Signed callbacks are all recorded.
                tracing::warn!(outcome = refusal.outcome.as_str(), detail = %refusal.detail, "payment callback refused");
                metrics::counter!("jembatan_payment_callbacks_refused_total", "outcome" => refusal.outcome.as_str())
                    .increment(1);
                if refusal.outcome == CallbackOutcome::RefusedMalformed {
                    let body = String::from_utf8_lossy(body).chars().take(4096).collect();
                    self.store()
                        .record_refused_callback(
                            ctx,
                            self.provider.name().to_owned(),
                            refusal.outcome,
                            refusal.detail.clone(),
                            body,
                        )
                        .await?;
                }
                Ok(CallbackAnswer { outcome: refusal.outcome, detail: refusal.detail, payment: None })
            }
        }
    }

    #[tracing::instrument(level = "debug", skip(self), fields(payment_id = %id))]
    pub async fn payment(&self, who: &Principal, id: PaymentId) -> Result<PaymentRecord, CoreError> {
        authz::check_role(who, Access::ReadPayment(None))?;
        let (payment, channel) =
            self.store().payment_with_channel(id).await?.ok_or_else(|| crate::not_found("payment", id))?;
        authz::check(who, Access::ReadPayment(Some(channel)))?;
        Ok(payment)
    }

    /// Refunds part or all of an order (see `jembatan_store::payments`).
    #[tracing::instrument(level = "debug", skip(self, idem), fields(order_id = %order_id))]
    pub async fn refund(
        &self,
        who: &Principal,
        order_id: jembatan_domain::OrderId,
        amount: Money,
        reason: String,
        idem: Option<Idem<jembatan_store::payments::RefundRecord>>,
    ) -> Result<jembatan_store::payments::RefundRecord, CoreError> {
        authz::check_role(who, Access::Refund(authz::anyone()))?;
        let order = self.store().order(order_id).await?.ok_or_else(|| crate::not_found("order", order_id))?;
        authz::check(who, Access::Refund(order.merchant_id))?;
        Ok(self.store().refund(self.ctx(who), order_id, amount, reason, idem).await?)
    }

    pub async fn refunds_of_order(
        &self,
        who: &Principal,
        order_id: jembatan_domain::OrderId,
    ) -> Result<Vec<jembatan_store::payments::RefundRecord>, CoreError> {
        let order = self.order(who, order_id).await?;
        Ok(self.store().refunds_of_order(&order).await?)
    }

    /// A ledger account and its latest transfers (after the cursor `before`).
    pub async fn ledger_account(
        &self,
        who: &Principal,
        id: jembatan_domain::AccountId,
        before: Option<jembatan_domain::TransferId>,
        limit: u32,
    ) -> Result<(jembatan_domain::ledger::Account, Vec<jembatan_domain::ledger::Transfer>), CoreError> {
        authz::check_role(who, Access::ReadLedger(Some(authz::anyone())))?;
        let account =
            self.store().ledger_account(id).await?.ok_or_else(|| crate::not_found("account", id))?;
        authz::check(who, Access::ReadLedger(account.merchant))?;
        let transfers = self.store().ledger_transfers_of_account(id, before, limit).await?;
        Ok((account, transfers))
    }

    /// Runs [`Core::sweep_payments`] every `interval` until the task is dropped.
    pub async fn run_payment_sweeps(self, interval: std::time::Duration) {
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            match self.sweep_payments().await {
                Ok((0, 0)) => {}
                Ok((expired, confirmed)) => tracing::info!(expired, confirmed, "payment sweep"),
                Err(error) => tracing::warn!(%error, "payment sweep failed"),
            }
        }
    }

    /// One sweep: expires unpaid checkouts whose time ran out, and confirms delivered orders
    /// whose auto-confirm period ended. Returns (payments expired, orders confirmed).
    pub async fn sweep_payments(&self) -> Result<(u64, u64), CoreError> {
        const BATCH: i64 = 500;
        let ctx = WriteCtx { actor: Principal::Operator, now: self.clock().now() };
        let mut expired = 0;
        for id in self.store().expired_payments(ctx.now, BATCH).await? {
            if self.store().expire_payment(ctx.clone(), id).await? {
                expired += 1;
            }
        }
        // Pending transfers with a timeout (none of the order flow's holds has one) expire.
        self.store().expire_pending_transfers(ctx.clone(), BATCH).await?;
        let mut confirmed = 0;
        let delivered_before = ctx.now.plus_ms(-self.payments.auto_confirm_after_ms);
        for id in self.store().orders_due_for_auto_confirm(delivered_before, BATCH).await? {
            match self.store().transition_order(ctx.clone(), id, OrderAction::Confirm, None).await {
                Ok(_) => confirmed += 1,
                // Confirmed by the buyer meanwhile.
                Err(jembatan_store::StoreError::Conflict(_) | jembatan_store::StoreError::Domain(_)) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok((expired, confirmed))
    }

    /// The simulator's "the buyer paid", in process: the same signed callback as over HTTP,
    /// handed straight to [`Core::payment_callback`] (demo data, tests, benchmarks).
    pub async fn provider_pays(
        &self,
        payment_id: PaymentId,
        amount: Option<Money>,
    ) -> Result<CallbackAnswer, CoreError> {
        let Some(simulator) = self.simulator.clone() else {
            return Err(CoreError::Forbidden("the provider simulator is not enabled".to_owned()));
        };
        let payment =
            self.store().payment(payment_id).await?.ok_or_else(|| crate::not_found("payment", payment_id))?;
        let amount = match amount {
            Some(amount) => amount,
            None => self.amount_due(&payment).await?,
        };
        let now = self.clock().now();
        let body = SimulatedProvider::paid_body(&payment, amount, now);
        let (timestamp, signature) = simulator.sign(&body, now);
        self.payment_callback(Some(&timestamp), Some(&signature), body.as_bytes()).await
    }

    /// What the buyer owes on a payment (see `jembatan_store::payments::amount_due`).
    async fn amount_due(&self, payment: &PaymentRecord) -> Result<Money, CoreError> {
        let checkout = self
            .store()
            .checkout_record(payment.checkout_id)
            .await?
            .ok_or_else(|| crate::not_found("payment", payment.id))?;
        Ok(jembatan_store::payments::amount_due(payment, &checkout.orders)?)
    }

    /// Checks out, opening the checkout's payment in the same unit.
    pub(crate) async fn checkout_with_payment(
        &self,
        who: &Principal,
        request: CheckoutRequest,
        idem: Option<Idem<CheckoutRecord>>,
    ) -> Result<CheckoutRecord, CoreError> {
        let payment = self.new_payment(&request);
        Ok(self.store().checkout(self.ctx(who), request, payment, idem).await?)
    }
}

/// POSTs a signed callback; returns the status and body of the answer.
pub async fn send_callback(
    url: &str,
    timestamp: &str,
    signature: &str,
    body: String,
) -> Result<(u16, String), String> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<hyper::body::Bytes>>();
    let request = hyper::Request::post(url)
        .header("content-type", "application/json")
        .header(TIMESTAMP_HEADER, timestamp)
        .header(SIGNATURE_HEADER, signature)
        .body(Full::new(hyper::body::Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(std::time::Duration::from_secs(30), client.request(request))
        .await
        .map_err(|_| format!("{url}: no answer within 30 s"))?
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simulator() -> SimulatedProvider {
        SimulatedProvider::new(b"s3cret".to_vec(), 300)
    }

    #[test]
    fn a_signed_callback_verifies_and_any_change_is_refused() {
        let now = Timestamp::from_unix_ms(1_800_000_000_000);
        let body = r#"{"event":"payment.paid","provider_ref":"SIM1","amount":1000}"#;
        let (ts, sig) = simulator().sign(body, now);
        let notice = simulator().verify_callback(Some(&ts), Some(&sig), body.as_bytes(), now).unwrap();
        assert_eq!(notice.amount, Some(Money::from_rupiah(1000).unwrap()));
        assert_eq!(notice.provider_ref.as_deref(), Some("SIM1"));

        let tampered = body.replace("1000", "9000");
        let refused =
            simulator().verify_callback(Some(&ts), Some(&sig), tampered.as_bytes(), now).unwrap_err();
        assert_eq!(refused.outcome, CallbackOutcome::RefusedSignature);
        let other_key = SimulatedProvider::new(b"other".to_vec(), 300);
        assert!(other_key.verify_callback(Some(&ts), Some(&sig), body.as_bytes(), now).is_err());
        assert!(simulator().verify_callback(None, Some(&sig), body.as_bytes(), now).is_err());
        assert!(simulator().verify_callback(Some(&ts), Some("v1=zz"), body.as_bytes(), now).is_err());

        // Within the tolerance either way passes; beyond it, refused even with a good signature.
        assert!(
            simulator().verify_callback(Some(&ts), Some(&sig), body.as_bytes(), now.plus_ms(299_000)).is_ok()
        );
        let late = simulator().verify_callback(Some(&ts), Some(&sig), body.as_bytes(), now.plus_ms(301_000));
        assert_eq!(late.unwrap_err().outcome, CallbackOutcome::RefusedTimestamp);
        let early =
            simulator().verify_callback(Some(&ts), Some(&sig), body.as_bytes(), now.plus_ms(-301_000));
        assert_eq!(early.unwrap_err().outcome, CallbackOutcome::RefusedTimestamp);
    }

    #[test]
    fn instructions_per_method() {
        let id = PaymentId::from_uuid(uuid::Uuid::now_v7());
        let amount = Money::from_rupiah(150_000).unwrap();
        let va = simulator().instruct(PaymentMethod::VirtualAccount, id, amount).unwrap();
        let number = va.va_number.unwrap();
        assert_eq!(number.len(), 16);
        assert!(number.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(va.bank_code.as_deref(), Some("014"));
        let q = simulator().instruct(PaymentMethod::Qris, id, amount).unwrap();
        let decoded = qris::decode(&q.qris_payload.unwrap()).unwrap();
        assert_eq!(decoded.amount, Some(amount));
        assert_eq!(decoded.point_of_initiation, "12");
        let ewallet = simulator().instruct(PaymentMethod::Ewallet, id, amount).unwrap();
        assert!(ewallet.redirect_url.unwrap().contains(&va.provider_ref));
        assert_eq!(ewallet.ewallet_ref.as_deref(), Some(va.provider_ref.as_str()));
    }
}
