//! The marketplace transaction core: the use cases of DESIGN.md §3–4 with authorisation, over
//! the store. Every public method takes the calling [`Principal`] first and asks [`authz`]
//! before it reads or writes anything; no handler decides access on its own.

pub mod audit;
pub mod authz;
pub mod clock;
pub mod error;
pub mod gateway;
pub mod maintenance;
pub mod migrate;
pub mod oversight;
pub mod payments;
pub mod policy;
pub mod tokens;
pub mod webhooks;

use std::sync::Arc;

use jembatan_domain::payout::{PayoutOutcome, ResultLine};
use jembatan_domain::reconcile::Report;
use jembatan_domain::{
    Channel, CheckoutRequest, Merchant, MerchantId, MerchantName, Nib, OrderAction, OrderId, OrderStatus,
    Origin, Principal, ProductId, Province, SkuId, StockLevel, TypedId,
};
use jembatan_domain::{PayoutBatchId, PayoutId, ReconciliationId};
use jembatan_store::catalogue::{NewProduct, ProductRecord, SkuRecord};
use jembatan_store::orders::{CheckoutRecord, OrderRecord};
use jembatan_store::payouts::{
    ConfirmationRecord, MerchantBalance, NewPayout, PayoutBatchRecord, PayoutRecord, ResultLineRecord,
};
use jembatan_store::reconciliation::{ReconciliationRecord, RunSummary};
use jembatan_store::{Idem, Store, StoreError, WriteCtx};

pub use authz::Access;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::CoreError;
pub use maintenance::MaintenanceOptions;
pub use payments::{PaymentProvider, PaymentSettings, SimulatedProvider};
pub use webhooks::WebhookOptions;

/// What an operator gives to register a merchant.
#[derive(Debug, Clone)]
pub struct NewMerchant {
    pub name: MerchantName,
    pub origin: Origin,
    pub province: Province,
    pub nib: Option<Nib>,
}

#[derive(Clone)]
pub struct Core {
    store: Store,
    clock: Arc<dyn Clock>,
    tokens: tokens::TokenCache,
    provider: Arc<dyn PaymentProvider>,
    payments: PaymentSettings,
    simulator: Option<Arc<SimulatedProvider>>,
    webhooks: Arc<WebhookOptions>,
}

impl Core {
    /// A core with the provider simulator under a random secret and default payment settings
    /// (tests and demos); `serve` uses [`Core::with_payments`].
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Core {
        let secret: [u8; 32] = rand::random();
        let settings = PaymentSettings::default();
        Core::with_simulator(store, clock, secret.to_vec(), settings)
    }

    /// A core whose payment provider is the built-in simulator, under `secret`.
    pub fn with_simulator(
        store: Store,
        clock: Arc<dyn Clock>,
        secret: Vec<u8>,
        settings: PaymentSettings,
    ) -> Core {
        let simulator = Arc::new(SimulatedProvider::new(secret, settings.callback_tolerance_s));
        let mut core = Core::with_payments(store, clock, simulator.clone(), settings);
        core.simulator = Some(simulator);
        core
    }

    /// A core with a real provider behind [`PaymentProvider`] (the simulator is off).
    pub fn with_payments(
        store: Store,
        clock: Arc<dyn Clock>,
        provider: Arc<dyn PaymentProvider>,
        payments: PaymentSettings,
    ) -> Core {
        Core {
            store,
            clock,
            tokens: tokens::TokenCache::default(),
            provider,
            payments,
            simulator: None,
            webhooks: Arc::default(),
        }
    }

    /// The provider simulator, when it is the provider.
    pub fn simulator(&self) -> Option<&Arc<SimulatedProvider>> {
        self.simulator.as_ref()
    }

    /// The same core with these webhook rules (the defaults refuse private addresses).
    pub fn with_webhook_options(mut self, options: WebhookOptions) -> Core {
        self.webhooks = Arc::new(options);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub(crate) fn ctx(&self, who: &Principal) -> WriteCtx {
        WriteCtx { actor: who.clone(), now: self.clock.now() }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(who = ?who))]
    pub async fn create_merchant(
        &self,
        who: &Principal,
        input: NewMerchant,
        idem: Option<Idem<Merchant>>,
    ) -> Result<Merchant, CoreError> {
        authz::check(who, Access::CreateMerchant)?;
        let id: MerchantId = jembatan_store::new_id();
        let merchant =
            Merchant::new(id, input.name, input.origin, input.province, input.nib, self.clock.now())?;
        Ok(self.store.create_merchant(self.ctx(who), merchant, idem).await?)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(merchant_id = %id))]
    pub async fn merchant(&self, who: &Principal, id: MerchantId) -> Result<Merchant, CoreError> {
        authz::check(who, Access::ReadMerchant(id))?;
        self.store.merchant(id).await?.ok_or_else(|| not_found("merchant", id))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(who = ?who, merchant_id = %product.merchant_id))]
    pub async fn create_product(
        &self,
        who: &Principal,
        product: NewProduct,
        idem: Option<Idem<ProductRecord>>,
    ) -> Result<ProductRecord, CoreError> {
        authz::check(who, Access::WriteCatalogue(product.merchant_id))?;
        Ok(self.store.create_product(self.ctx(who), product, idem).await?)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(product_id = %id))]
    pub async fn product(&self, who: &Principal, id: ProductId) -> Result<ProductRecord, CoreError> {
        authz::check_role(who, Access::ReadCatalogue(authz::anyone()))?;
        let product = self.store.product(id).await?.ok_or_else(|| not_found("product", id))?;
        authz::check(who, Access::ReadCatalogue(product.merchant_id))?;
        Ok(product)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(sku_id = %id))]
    pub async fn sku(&self, who: &Principal, id: SkuId) -> Result<SkuRecord, CoreError> {
        authz::check_role(who, Access::ReadCatalogue(authz::anyone()))?;
        let sku = self.store.sku(id).await?.ok_or_else(|| not_found("sku", id))?;
        authz::check(who, Access::ReadCatalogue(sku.merchant_id))?;
        Ok(sku)
    }

    #[tracing::instrument(level = "debug", skip(self, idem), fields(sku_id = %sku_id))]
    pub async fn set_stock(
        &self,
        who: &Principal,
        sku_id: SkuId,
        on_hand: StockLevel,
        idem: Option<Idem<SkuRecord>>,
    ) -> Result<SkuRecord, CoreError> {
        authz::check_role(who, Access::WriteCatalogue(authz::anyone()))?;
        let sku = self.store.sku(sku_id).await?.ok_or_else(|| not_found("sku", sku_id))?;
        authz::check(who, Access::WriteCatalogue(sku.merchant_id))?;
        Ok(self.store.set_stock(self.ctx(who), sku.merchant_id, sku_id, on_hand, idem).await?)
    }

    /// A channel checks out a cart on a buyer's behalf; the channel of the checkout is the
    /// caller's own, whatever the body says.
    #[tracing::instrument(level = "debug", skip_all, fields(who = ?who, lines = request.lines().len()))]
    pub async fn checkout(
        &self,
        who: &Principal,
        request: CheckoutRequest,
        idem: Option<Idem<CheckoutRecord>>,
    ) -> Result<CheckoutRecord, CoreError> {
        authz::check(who, Access::Checkout(request.channel))?;
        self.checkout_with_payment(who, request, idem).await
    }

    #[tracing::instrument(level = "debug", skip(self), fields(order_id = %id))]
    pub async fn order(&self, who: &Principal, id: OrderId) -> Result<OrderRecord, CoreError> {
        authz::check_role(who, Access::ReadOrder { merchant: authz::anyone(), channel: Channel::Social })?;
        let order = self.store.order(id).await?.ok_or_else(|| not_found("order", id))?;
        authz::check(who, Access::ReadOrder { merchant: order.merchant_id, channel: order.channel })?;
        Ok(order)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(merchant_id = %merchant_id))]
    pub async fn orders_of_merchant(
        &self,
        who: &Principal,
        merchant_id: MerchantId,
        status: Option<OrderStatus>,
        before: Option<OrderId>,
        limit: u32,
    ) -> Result<Vec<OrderRecord>, CoreError> {
        authz::check(who, Access::ListOrders(merchant_id))?;
        if self.store.merchant(merchant_id).await?.is_none() {
            return Err(not_found("merchant", merchant_id));
        }
        Ok(self.store.orders_of_merchant(merchant_id, status, before, limit).await?)
    }

    #[tracing::instrument(level = "debug", skip(self, idem), fields(order_id = %id, action = action.as_str()))]
    pub async fn transition_order(
        &self,
        who: &Principal,
        id: OrderId,
        action: OrderAction,
        idem: Option<Idem<OrderRecord>>,
    ) -> Result<OrderRecord, CoreError> {
        let any_order =
            Access::TransitionOrder { merchant: authz::anyone(), channel: Channel::Social, action };
        authz::check_role(who, any_order)?;
        let order = self.store.order(id).await?.ok_or_else(|| not_found("order", id))?;
        authz::check(
            who,
            Access::TransitionOrder { merchant: order.merchant_id, channel: order.channel, action },
        )?;
        // Invariant 6: a legacy-owned shop's orders move through the gateway, which keeps the
        // legacy row and its core twin in step.
        if let Some(shop) = self.store.social_shop_of_merchant(order.merchant_id).await?
            && shop.owner != jembatan_store::social::Owner::Core
        {
            return Err(StoreError::NotOwner {
                merchant_id: order.merchant_id.to_string(),
                owner: shop.owner.as_str(),
            }
            .into());
        }
        Ok(self.store.transition_order(self.ctx(who), id, action, idem).await?)
    }
}

/// Payouts and reconciliation (DESIGN.md §3–4: settlement).
impl Core {
    #[tracing::instrument(level = "debug", skip_all, fields(who = ?who, merchant_id = %payout.merchant_id))]
    pub async fn request_payout(
        &self,
        who: &Principal,
        payout: NewPayout,
        idem: Option<Idem<PayoutRecord>>,
    ) -> Result<PayoutRecord, CoreError> {
        authz::check(who, Access::RequestPayout(payout.merchant_id))?;
        Ok(self.store.request_payout(self.ctx(who), payout, idem).await?)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(payout_id = %id))]
    pub async fn payout(&self, who: &Principal, id: PayoutId) -> Result<PayoutRecord, CoreError> {
        authz::check_role(who, Access::ReadPayouts(authz::anyone()))?;
        let payout = self.store.payout(id).await?.ok_or_else(|| not_found("payout", id))?;
        authz::check(who, Access::ReadPayouts(payout.merchant_id))?;
        Ok(payout)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(merchant_id = %merchant_id))]
    pub async fn payouts_of_merchant(
        &self,
        who: &Principal,
        merchant_id: MerchantId,
        before: Option<PayoutId>,
        limit: u32,
    ) -> Result<Vec<PayoutRecord>, CoreError> {
        authz::check(who, Access::ReadPayouts(merchant_id))?;
        if self.store.merchant(merchant_id).await?.is_none() {
            return Err(not_found("merchant", merchant_id));
        }
        Ok(self.store.payouts_of_merchant(merchant_id, before, limit).await?)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(merchant_id = %merchant_id))]
    pub async fn merchant_balance(
        &self,
        who: &Principal,
        merchant_id: MerchantId,
    ) -> Result<MerchantBalance, CoreError> {
        authz::check(who, Access::ReadPayouts(merchant_id))?;
        if self.store.merchant(merchant_id).await?.is_none() {
            return Err(not_found("merchant", merchant_id));
        }
        Ok(self.store.merchant_balance(merchant_id).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(who = ?who))]
    pub async fn create_payout_batch(
        &self,
        who: &Principal,
        idem: Option<Idem<PayoutBatchRecord>>,
    ) -> Result<PayoutBatchRecord, CoreError> {
        authz::check(who, Access::ManagePayouts)?;
        Ok(self.store.create_payout_batch(self.ctx(who), idem).await?)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(batch_id = %id))]
    pub async fn payout_batch(
        &self,
        who: &Principal,
        id: PayoutBatchId,
    ) -> Result<PayoutBatchRecord, CoreError> {
        authz::check(who, Access::ReadPayoutBatch)?;
        self.store.payout_batch(id).await?.ok_or_else(|| not_found("payout batch", id))
    }

    #[tracing::instrument(level = "debug", skip(self, idem), fields(payout_id = %id))]
    pub async fn confirm_payout(
        &self,
        who: &Principal,
        id: PayoutId,
        outcome: PayoutOutcome,
        idem: Option<Idem<ConfirmationRecord>>,
    ) -> Result<ConfirmationRecord, CoreError> {
        authz::check(who, Access::ManagePayouts)?;
        Ok(self.store.confirm_payout(self.ctx(who), id, outcome, idem).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(who = ?who, lines = lines.len()))]
    pub async fn apply_payout_results(
        &self,
        who: &Principal,
        lines: Vec<ResultLine>,
        idem: Option<Idem<Vec<ResultLineRecord>>>,
    ) -> Result<Vec<ResultLineRecord>, CoreError> {
        authz::check(who, Access::ManagePayouts)?;
        Ok(self.store.apply_payout_results(self.ctx(who), lines, idem).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(who = ?who, lines = report.lines.len()))]
    pub async fn reconcile(
        &self,
        who: &Principal,
        report: Report,
        idem: Option<Idem<ReconciliationRecord>>,
    ) -> Result<ReconciliationRecord, CoreError> {
        authz::check(who, Access::Reconcile)?;
        Ok(self.store.reconcile(self.ctx(who), report, idem).await?)
    }

    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn reconciliations(
        &self,
        who: &Principal,
        before: Option<ReconciliationId>,
        limit: u32,
    ) -> Result<Vec<RunSummary>, CoreError> {
        authz::check(who, Access::ReadReconciliation)?;
        Ok(self.store.reconciliations(before, limit).await?)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(reconciliation_id = %id))]
    pub async fn reconciliation(
        &self,
        who: &Principal,
        id: ReconciliationId,
    ) -> Result<ReconciliationRecord, CoreError> {
        authz::check(who, Access::ReadReconciliation)?;
        self.store.reconciliation(id).await?.ok_or_else(|| not_found("reconciliation", id))
    }
}

pub(crate) fn not_found<T: TypedId>(entity: &'static str, id: T) -> CoreError {
    CoreError::Store(StoreError::not_found(entity, id))
}
