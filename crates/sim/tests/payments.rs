//! The money core end to end at the level of the use cases, with an injected clock: payment by
//! signed callback, expiry of unpaid checkouts, automatic confirmation after delivery, refunds
//! before and after release, cash on delivery, and many tasks paying, confirming and refunding
//! at once — with every invariant of DESIGN.md §8 checked after each story (on SQLite, or on
//! PostgreSQL when `JEMBATAN_TEST_DATABASE_URL` is set).

use std::sync::Arc;

use jembatan_core::{Clock, Core, ManualClock, PaymentSettings};
use jembatan_domain::ledger::{AccountKind, merchant_balance_account, platform_account};
use jembatan_domain::*;
use jembatan_sim::invariants;
use jembatan_store::catalogue::NewProduct;
use jembatan_store::orders::CheckoutRecord;
use jembatan_store::payments::CallbackOutcome;
use jembatan_store::testing::{TestStore, fresh_store};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

struct World {
    core: Core,
    clock: Arc<ManualClock>,
    t: TestStore,
}

async fn world() -> World {
    let t = fresh_store().await.unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_ms(1_800_000_000_000)));
    let settings = PaymentSettings::default();
    let core =
        Core::with_simulator(t.store.clone(), clock.clone(), b"test-provider-secret".to_vec(), settings);
    World { core, clock, t }
}

impl World {
    async fn merchant(&self) -> MerchantId {
        let merchant = self
            .core
            .create_merchant(
                &Principal::Operator,
                jembatan_core::NewMerchant {
                    name: MerchantName::parse("Toko Uji").unwrap(),
                    origin: Origin::Local,
                    province: Province::parse("Bali").unwrap(),
                    nib: Some(Nib::parse("9120001234567").unwrap()),
                },
                None,
            )
            .await
            .unwrap();
        merchant.id
    }

    /// A fashion SKU (fee 7.5%) of `price` with `stock` units.
    async fn sku(&self, merchant: MerchantId, code: &str, price: i64, stock: u32) -> SkuId {
        let product = NewProduct {
            merchant_id: merchant,
            title: ProductTitle::parse("Kemeja").unwrap(),
            category: Category::Fashion,
            skus: vec![NewSku {
                code: SkuCode::parse(code).unwrap(),
                price: Price::from_rupiah(price).unwrap(),
                stock: StockLevel::on_hand(i64::from(stock)).unwrap(),
            }],
        };
        self.core.create_product(&Principal::Merchant(merchant), product, None).await.unwrap().skus[0].id
    }

    async fn checkout(&self, items: &[(SkuId, i64)], method: PaymentMethod) -> CheckoutRecord {
        let lines = items
            .iter()
            .map(|(sku, n)| CheckoutLine { sku_id: *sku, quantity: Quantity::new(*n).unwrap() })
            .collect();
        let request = CheckoutRequest::new(
            Channel::Social,
            BuyerId::parse("buyer-1").unwrap(),
            lines,
            ShippingAddress::parse("Siti", "081234567890", "Jl. Braga 1", "Bandung", "Jawa Barat", "40111")
                .unwrap(),
            method,
        )
        .unwrap();
        self.core.checkout(&Principal::Channel(Channel::Social), request, None).await.unwrap()
    }

    async fn act(&self, order: OrderId, action: OrderAction) -> OrderStatus {
        let who = match action {
            OrderAction::Confirm => Principal::Channel(Channel::Social),
            _ => Principal::Operator,
        };
        self.core.transition_order(&who, order, action, None).await.unwrap().status
    }

    async fn order(&self, id: OrderId) -> jembatan_store::orders::OrderRecord {
        self.core.store().order(id).await.unwrap().unwrap()
    }

    async fn balance(&self, account: AccountId) -> i64 {
        self.core.store().ledger_account(account).await.unwrap().map_or(0, |a| {
            let b = a.balances;
            b.credits_posted + b.credits_pending - b.debits_posted - b.debits_pending
        })
    }

    async fn available(&self, sku: SkuId) -> u32 {
        let s = self.core.store().sku(sku).await.unwrap().unwrap();
        s.stock.units_on_hand() - s.stock.units_reserved()
    }

    async fn invariants_hold(&self) {
        assert_eq!(invariants::check(&self.t.store).await.unwrap(), vec![]);
    }
}

fn payment_id(c: &CheckoutRecord) -> PaymentId {
    c.payment.as_ref().unwrap().id
}

#[tokio::test]
async fn paid_confirmed_and_settled_with_the_documented_fee() {
    let w = world().await;
    let m = w.merchant().await;
    let sku = w.sku(m, "K-1", 10_000, 5).await;
    let c = w.checkout(&[(sku, 1)], PaymentMethod::VirtualAccount).await;
    let payment = c.payment.clone().unwrap();
    assert_eq!(payment.amount.rupiah(), 10_000);
    assert_eq!(payment.status, PaymentStatus::Pending);
    assert_eq!(payment.expires_at, Some(w.clock.now().plus_ms(PaymentSettings::default().payment_ttl_ms)));
    assert_eq!(payment.instructions.va_number.as_ref().unwrap().len(), 16);

    // A callback claiming another amount is refused, recorded, and changes nothing.
    let wrong = w.core.provider_pays(payment.id, Some(Money::from_rupiah(9_999).unwrap())).await.unwrap();
    assert_eq!(wrong.outcome, CallbackOutcome::RefusedAmount);
    assert_eq!(w.order(c.orders[0].id).await.status, OrderStatus::AwaitingPayment);

    let paid = w.core.provider_pays(payment.id, None).await.unwrap();
    assert_eq!(paid.outcome, CallbackOutcome::Applied);
    let again = w.core.provider_pays(payment.id, None).await.unwrap();
    assert_eq!(again.outcome, CallbackOutcome::AlreadyApplied, "a repeated callback changes nothing");
    let order = c.orders[0].id;
    assert_eq!(w.order(order).await.held.rupiah(), 10_000);
    assert_eq!(w.balance(platform_account(AccountKind::Escrow)).await, 10_000);
    let callbacks = w.core.store().payment_callbacks(payment.id).await.unwrap();
    let outcomes: Vec<&str> = callbacks.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(outcomes, ["refused_wrong_amount", "applied", "already_applied"]);

    w.act(order, OrderAction::Ship).await;
    w.act(order, OrderAction::Deliver).await;
    // Nothing happens before the auto-confirm period ends…
    w.clock.advance_ms(2 * DAY_MS - 1);
    assert_eq!(w.core.sweep_payments().await.unwrap(), (0, 0));
    // …and at its end the order completes and escrow is released: Rp10,000 at 7.5% → Rp750 fee.
    w.clock.advance_ms(1);
    assert_eq!(w.core.sweep_payments().await.unwrap(), (0, 1));
    assert_eq!(w.order(order).await.status, OrderStatus::Completed);
    assert_eq!(w.balance(merchant_balance_account(m)).await, 9_250);
    assert_eq!(w.balance(platform_account(AccountKind::PlatformFeeRevenue)).await, 750);
    assert_eq!(w.balance(platform_account(AccountKind::Escrow)).await, 0);
    w.invariants_hold().await;
}

#[tokio::test]
async fn an_unpaid_checkout_expires_its_orders_cancel_and_a_late_callback_is_refused() {
    let w = world().await;
    let (m1, m2) = (w.merchant().await, w.merchant().await);
    let (a, b) = (w.sku(m1, "A-1", 20_000, 3).await, w.sku(m2, "B-1", 5_000, 3).await);
    let c = w.checkout(&[(a, 2), (b, 1)], PaymentMethod::Qris).await;
    let qris = jembatan_domain::qris::decode(
        c.payment.as_ref().unwrap().instructions.qris_payload.as_ref().unwrap(),
    )
    .unwrap();
    assert_eq!(qris.amount, Some(Money::from_rupiah(45_000).unwrap()));
    assert_eq!((w.available(a).await, w.available(b).await), (1, 2));

    w.clock.advance_ms(PaymentSettings::default().payment_ttl_ms - 1);
    assert_eq!(w.core.sweep_payments().await.unwrap(), (0, 0));
    w.clock.advance_ms(1);
    assert_eq!(w.core.sweep_payments().await.unwrap(), (1, 0));
    for order in &c.orders {
        assert_eq!(w.order(order.id).await.status, OrderStatus::Cancelled);
    }
    assert_eq!((w.available(a).await, w.available(b).await), (3, 3), "the stock returned");
    let late = w.core.provider_pays(payment_id(&c), None).await.unwrap();
    assert_eq!(late.outcome, CallbackOutcome::RefusedExpired);
    assert_eq!(w.balance(platform_account(AccountKind::Escrow)).await, 0);
    w.invariants_hold().await;
}

#[tokio::test]
async fn refunds_before_and_after_release_never_exceed_what_was_paid() {
    let w = world().await;
    let m = w.merchant().await;
    let sku = w.sku(m, "R-1", 10_000, 10).await;
    let c = w.checkout(&[(sku, 2)], PaymentMethod::Ewallet).await;
    let order = c.orders[0].id;
    assert_eq!(w.order(order).await.fee.rupiah(), 1_500);
    w.core.provider_pays(payment_id(&c), None).await.unwrap();
    let merchant = Principal::Merchant(m);
    let rp = |n| Money::from_rupiah(n).unwrap();

    // Before release: from escrow.
    let first = w.core.refund(&merchant, order, rp(5_000), "one shirt was torn".into(), None).await.unwrap();
    assert_eq!(first.stage, "before_release");
    assert_eq!(w.order(order).await.held.rupiah(), 15_000);
    assert_eq!(w.balance(platform_account(AccountKind::Escrow)).await, 15_000);
    let too_much = w.core.refund(&merchant, order, rp(15_001), "x".into(), None).await.unwrap_err();
    assert!(too_much.to_string().contains("exceeds"), "{too_much}");
    // Another merchant cannot refund it; the buyer's channel cannot either.
    let other = w.merchant().await;
    assert!(w.core.refund(&Principal::Merchant(other), order, rp(1), "x".into(), None).await.is_err());
    assert!(
        w.core.refund(&Principal::Channel(Channel::Social), order, rp(1), "x".into(), None).await.is_err()
    );

    w.act(order, OrderAction::Ship).await;
    w.act(order, OrderAction::Deliver).await;
    w.act(order, OrderAction::Confirm).await;
    // Released: 15,000 kept, fee 1,500 − round(1,500 × 5,000 / 20,000) = 1,125.
    assert_eq!(w.balance(merchant_balance_account(m)).await, 13_875);
    assert_eq!(w.balance(platform_account(AccountKind::PlatformFeeRevenue)).await, 1_125);

    // After release: from the merchant's balance and the fee revenue's share.
    let after = w.core.refund(&merchant, order, rp(15_000), "returned".into(), None).await.unwrap();
    assert_eq!(after.stage, "after_release");
    assert_eq!(after.fee_reversed.rupiah(), 1_125);
    assert_eq!(w.balance(merchant_balance_account(m)).await, 0);
    assert_eq!(w.balance(platform_account(AccountKind::PlatformFeeRevenue)).await, 0);
    assert!(w.core.refund(&merchant, order, rp(1), "again".into(), None).await.is_err(), "fully refunded");
    assert_eq!(w.order(order).await.refunded.rupiah(), 20_000);
    w.invariants_hold().await;
}

#[tokio::test]
async fn a_refund_after_release_cannot_take_the_merchant_balance_below_zero() {
    let w = world().await;
    let m = w.merchant().await;
    let sku = w.sku(m, "P-1", 100_000, 10).await;
    let c = w.checkout(&[(sku, 1)], PaymentMethod::VirtualAccount).await;
    let order = c.orders[0].id;
    w.core.provider_pays(payment_id(&c), None).await.unwrap();
    for action in [OrderAction::Ship, OrderAction::Deliver, OrderAction::Confirm] {
        w.act(order, action).await;
    }
    // The merchant withdraws most of its balance (92,500) to its bank.
    use jembatan_domain::payout::{AccountHolder, AccountNumber, BankAccount, BankCode, payout_amount};
    let payout = jembatan_store::payouts::NewPayout {
        merchant_id: m,
        amount: payout_amount(92_000).unwrap(),
        account: BankAccount {
            bank_code: BankCode::parse("014").unwrap(),
            account_number: AccountNumber::parse("0012345678").unwrap(),
            holder: AccountHolder::parse("Sari Wulandari").unwrap(),
        },
    };
    w.core.request_payout(&Principal::Merchant(m), payout, None).await.unwrap();
    let refused = w
        .core
        .refund(
            &Principal::Merchant(m),
            order,
            Money::from_rupiah(50_000).unwrap(),
            "late return".into(),
            None,
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("balance"), "{refused}");
    assert_eq!(w.order(order).await.refunded, Money::ZERO, "nothing half-written");
    w.invariants_hold().await;
}

#[tokio::test]
async fn cash_on_delivery_is_accepted_at_once_and_held_when_the_courier_remits() {
    let w = world().await;
    let m = w.merchant().await;
    let sku = w.sku(m, "C-1", 30_000, 5).await;
    let c = w.checkout(&[(sku, 1)], PaymentMethod::CashOnDelivery).await;
    let order = c.orders[0].id;
    assert_eq!(c.payment.as_ref().unwrap().expires_at, None, "cash on delivery never expires");
    assert_eq!(w.order(order).await.status, OrderStatus::Paid);
    assert_eq!(w.order(order).await.held, Money::ZERO, "no money yet");
    w.clock.advance_ms(10 * DAY_MS);
    assert_eq!(w.core.sweep_payments().await.unwrap(), (0, 0));
    w.act(order, OrderAction::Ship).await;
    w.act(order, OrderAction::Deliver).await;
    // The buyer cannot confirm (nor the sweep) before the courier remits the cash: there is
    // nothing in escrow to release yet.
    let early = w
        .core
        .transition_order(&Principal::Channel(Channel::Social), order, OrderAction::Confirm, None)
        .await;
    assert!(early.unwrap_err().to_string().contains("not remitted"));
    w.clock.advance_ms(3 * DAY_MS);
    assert_eq!(w.core.sweep_payments().await.unwrap(), (0, 0));
    assert_eq!(w.core.provider_pays(payment_id(&c), None).await.unwrap().outcome, CallbackOutcome::Applied);
    assert_eq!(w.order(order).await.held.rupiah(), 30_000);
    w.act(order, OrderAction::Confirm).await;
    assert_eq!(w.balance(merchant_balance_account(m)).await, 27_750);
    w.invariants_hold().await;
}

#[tokio::test]
async fn cancelling_after_a_partial_refund_returns_the_rest_and_voiding_returns_all() {
    let w = world().await;
    let m = w.merchant().await;
    let sku = w.sku(m, "V-1", 8_000, 10).await;
    let (c1, c2) = (
        w.checkout(&[(sku, 1)], PaymentMethod::Qris).await,
        w.checkout(&[(sku, 1)], PaymentMethod::Qris).await,
    );
    for c in [&c1, &c2] {
        w.core.provider_pays(payment_id(c), None).await.unwrap();
    }
    let rp = |n| Money::from_rupiah(n).unwrap();
    w.core.refund(&Principal::Merchant(m), c1.orders[0].id, rp(3_000), "partial".into(), None).await.unwrap();
    assert_eq!(w.act(c1.orders[0].id, OrderAction::Cancel).await, OrderStatus::Cancelled);
    assert_eq!(w.act(c2.orders[0].id, OrderAction::Cancel).await, OrderStatus::Cancelled);
    assert_eq!(w.order(c1.orders[0].id).await.refunded.rupiah(), 8_000);
    // Cancelled without an earlier refund: all of it goes back to the buyer as one refund.
    let back = w.core.store().refunds_of_order(&w.order(c2.orders[0].id).await).await.unwrap();
    assert_eq!(back.iter().map(|r| r.amount.rupiah()).collect::<Vec<_>>(), [8_000]);
    assert_eq!(w.balance(platform_account(AccountKind::Escrow)).await, 0);
    assert_eq!(w.available(sku).await, 10);
    w.invariants_hold().await;
}

#[tokio::test]
async fn money_for_an_order_cancelled_before_payment_goes_back_to_the_buyer() {
    let w = world().await;
    let (m1, m2) = (w.merchant().await, w.merchant().await);
    let (a, b) = (w.sku(m1, "A-2", 20_000, 3).await, w.sku(m2, "B-2", 5_000, 3).await);
    let c = w.checkout(&[(a, 1), (b, 1)], PaymentMethod::VirtualAccount).await;
    let cancelled = c.orders.iter().find(|o| o.merchant_id == m2).unwrap().id;
    w.act(cancelled, OrderAction::Cancel).await;
    // The buyer pays the VA amount, which still covers the cancelled order.
    let paid = w.core.provider_pays(payment_id(&c), None).await.unwrap();
    assert_eq!(paid.outcome, CallbackOutcome::Applied);
    assert!(paid.detail.contains("Rp5000"), "{}", paid.detail);
    let order = w.order(cancelled).await;
    assert_eq!(
        (order.status, order.refunded.rupiah(), order.held),
        (OrderStatus::Cancelled, 5_000, Money::ZERO)
    );
    assert_eq!(w.core.store().refunds_of_order(&order).await.unwrap().len(), 1);
    assert_eq!(w.balance(platform_account(AccountKind::Escrow)).await, 20_000, "only the live order is held");
    w.invariants_hold().await;
}

/// Many tasks at once: buyers paying (some twice), merchants shipping, refunding and withdrawing
/// (payouts racing refunds after release for the same balance), buyers confirming, the sweeper
/// running; afterwards every invariant holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_payments_confirmations_and_refunds_keep_every_invariant() {
    let w = Arc::new(world().await);
    let m = w.merchant().await;
    let sku = w.sku(m, "S-1", 12_345, 1_000).await;
    let mut checkouts = Vec::new();
    for i in 0..40 {
        let method = [PaymentMethod::VirtualAccount, PaymentMethod::Qris, PaymentMethod::Ewallet][i % 3];
        checkouts.push(w.checkout(&[(sku, 1 + (i % 3) as i64)], method).await);
    }
    let mut tasks = Vec::new();
    for (i, c) in checkouts.into_iter().enumerate() {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            let pay = payment_id(&c);
            let order = c.orders[0].id;
            let merchant = Principal::Merchant(m);
            // Two callbacks race for the same payment: exactly one applies.
            let (a, b) = tokio::join!(w.core.provider_pays(pay, None), w.core.provider_pays(pay, None));
            let applied = [a.unwrap().outcome, b.unwrap().outcome]
                .iter()
                .filter(|o| **o == CallbackOutcome::Applied)
                .count();
            assert_eq!(applied, 1);
            let rp = |n| Money::from_rupiah(n).unwrap();
            match i % 4 {
                0 => {
                    // Two partial refunds race each other and the shipping.
                    let (r1, r2, _) = tokio::join!(
                        w.core.refund(&merchant, order, rp(1_000), "a".into(), None),
                        w.core.refund(&merchant, order, rp(2_000), "b".into(), None),
                        w.core.transition_order(&Principal::Operator, order, OrderAction::Ship, None),
                    );
                    let _ = (r1, r2);
                }
                1 => {
                    for action in [OrderAction::Ship, OrderAction::Deliver] {
                        let _ = w.core.transition_order(&Principal::Operator, order, action, None).await;
                    }
                    let channel = Principal::Channel(Channel::Social);
                    let (confirm, refund) = tokio::join!(
                        w.core.transition_order(&channel, order, OrderAction::Confirm, None),
                        w.core.refund(&merchant, order, rp(500), "race".into(), None),
                    );
                    let _ = (confirm, refund);
                    // After release: a payout and a refund race for the same merchant balance
                    // (either may be refused for lack of balance; never both granted beyond it).
                    use jembatan_domain::payout::{
                        AccountHolder, AccountNumber, BankAccount, BankCode, payout_amount,
                    };
                    let payout = jembatan_store::payouts::NewPayout {
                        merchant_id: m,
                        amount: payout_amount(8_000).unwrap(),
                        account: BankAccount {
                            bank_code: BankCode::parse("014").unwrap(),
                            account_number: AccountNumber::parse("0012345678").unwrap(),
                            holder: AccountHolder::parse("Toko Uji").unwrap(),
                        },
                    };
                    let (paid_out, refund) = tokio::join!(
                        w.core.request_payout(&merchant, payout, None),
                        w.core.refund(&merchant, order, rp(6_000), "returned".into(), None),
                    );
                    let _ = (paid_out, refund);
                }
                2 => {
                    let (cancel, refund) = tokio::join!(
                        w.core.transition_order(&Principal::Operator, order, OrderAction::Cancel, None),
                        w.core.refund(&merchant, order, rp(700), "race".into(), None),
                    );
                    let _ = (cancel, refund);
                }
                _ => {
                    let _ = w.core.sweep_payments().await;
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let payouts = w.core.store().payouts_of_merchant(m, None, 100).await.unwrap();
    assert!(!payouts.is_empty(), "the race exercised payouts too");
    w.invariants_hold().await;
}
