//! A small, realistic demo shop: local merchants in several provinces and cross-border sellers,
//! products with SKUs, and orders from both storefronts in every state of the order lifecycle.

use jembatan_core::{Core, CoreError, NewMerchant};
use jembatan_domain::*;
use jembatan_store::catalogue::NewProduct;

pub struct DemoSummary {
    pub merchants: Vec<(MerchantId, String)>,
    pub orders_by_status: Vec<(OrderStatus, usize)>,
    /// Payments still waiting for the buyer (to try `jembatan provider pay` on).
    pub unpaid_payments: Vec<PaymentId>,
}

/// A SKU of the demo: code, price in rupiah, units on hand.
type SkuSpec = (&'static str, i64, i64);
/// A product of the demo: title, category, SKUs.
type ProductSpec = (&'static str, Category, &'static [SkuSpec]);

struct MerchantSpec {
    name: &'static str,
    origin: Origin,
    province: &'static str,
    nib: Option<&'static str>,
    products: &'static [ProductSpec],
}

const MERCHANTS: &[MerchantSpec] = &[
    MerchantSpec {
        name: "Batik Sekar Jagad",
        origin: Origin::Local,
        province: "DI Yogyakarta",
        nib: Some("9120001234567"),
        products: &[
            (
                "Kemeja Batik Pria Lengan Panjang",
                Category::Fashion,
                &[("KBP-M", 189_000, 40), ("KBP-L", 189_000, 35), ("KBP-XL", 199_000, 20)],
            ),
            ("Kain Batik Tulis Parang 2m", Category::Fashion, &[("KBT-PARANG", 450_000, 8)]),
        ],
    },
    MerchantSpec {
        name: "Kopi Gayo Aceh Asli",
        origin: Origin::Local,
        province: "Aceh",
        nib: Some("9120007654321"),
        products: &[
            (
                "Kopi Arabika Gayo 250g Biji",
                Category::Food,
                &[("GAYO-250-BJ", 85_000, 120), ("GAYO-250-BK", 85_000, 90)],
            ),
            ("Kopi Luwak Gayo 100g", Category::Food, &[("LUWAK-100", 275_000, 15)]),
        ],
    },
    MerchantSpec {
        name: "Skincare Cantik Bandung",
        origin: Origin::Local,
        province: "Jawa Barat",
        nib: Some("9120005551234"),
        products: &[("Serum Vitamin C 20ml", Category::Beauty, &[("SVC-20", 79_000, 200)])],
    },
    MerchantSpec {
        name: "Elektronik Jaya Surabaya",
        origin: Origin::Local,
        province: "Jawa Timur",
        nib: Some("9120009998877"),
        products: &[
            (
                "Earbuds Bluetooth TWS",
                Category::Electronics,
                &[("TWS-HITAM", 149_000, 60), ("TWS-PUTIH", 149_000, 45)],
            ),
            ("Powerbank 10000mAh", Category::Electronics, &[("PB-10K", 129_000, 80)]),
        ],
    },
    MerchantSpec {
        name: "Shenzhen Gadget Direct",
        origin: Origin::CrossBorder,
        province: "overseas",
        nib: None,
        products: &[("Drone Lipat 4K dengan GPS", Category::Electronics, &[("DRN-4K", 2_450_000, 12)])],
    },
    MerchantSpec {
        name: "Tokyo Book House",
        origin: Origin::CrossBorder,
        province: "overseas",
        nib: None,
        products: &[(
            "Buku Seni Ukiyo-e (Edisi Bahasa Inggris)",
            Category::Books,
            &[("UKIYOE-EN", 1_850_000, 10)],
        )],
    },
];

const BUYERS: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("Siti Rahayu", "081234567890", "Jl. Braga No. 12", "Bandung", "Jawa Barat", "40111"),
    ("Budi Santoso", "+6285711223344", "Jl. Malioboro No. 45", "Yogyakarta", "DI Yogyakarta", "55213"),
    ("Made Wirawan", "6281339876543", "Jl. Sunset Road No. 88", "Denpasar", "Bali", "80361"),
    ("Rina Marpaung", "0813-6123-4567", "Jl. Gatot Subroto No. 3", "Medan", "Sumatera Utara", "20112"),
];

/// Fills an empty core with the demo shop. `operator` acts for the platform.
pub async fn seed(core: &Core) -> Result<DemoSummary, CoreError> {
    let operator = Principal::Operator;
    let mut merchants = Vec::new();
    let mut skus: Vec<SkuId> = Vec::new();
    for spec in MERCHANTS {
        let merchant = core
            .create_merchant(
                &operator,
                NewMerchant {
                    name: MerchantName::parse(spec.name)?,
                    origin: spec.origin,
                    province: Province::parse(spec.province)?,
                    nib: spec.nib.map(Nib::parse).transpose()?,
                },
                None,
            )
            .await?;
        let me = Principal::Merchant(merchant.id);
        for (title, category, variants) in spec.products {
            let product = NewProduct {
                merchant_id: merchant.id,
                title: ProductTitle::parse(title)?,
                category: *category,
                skus: variants
                    .iter()
                    .map(|(code, price, stock)| {
                        Ok(NewSku {
                            code: SkuCode::parse(code)?,
                            price: Price::from_rupiah(*price)?,
                            stock: StockLevel::on_hand(*stock)?,
                        })
                    })
                    .collect::<Result<_, DomainError>>()?,
            };
            let record = core.create_product(&me, product, None).await?;
            skus.extend(record.skus.iter().map(|s| s.id));
        }
        merchants.push((merchant.id, spec.name.to_owned()));
    }
    // Orders that end in each state: (channel, how far the order goes).
    let plan: [(Channel, OrderStatus); 12] = [
        (Channel::Social, OrderStatus::AwaitingPayment),
        (Channel::Marketplace, OrderStatus::AwaitingPayment),
        (Channel::Social, OrderStatus::Paid),
        (Channel::Marketplace, OrderStatus::Paid),
        (Channel::Social, OrderStatus::Shipped),
        (Channel::Marketplace, OrderStatus::Shipped),
        (Channel::Social, OrderStatus::Delivered),
        (Channel::Marketplace, OrderStatus::Delivered),
        (Channel::Social, OrderStatus::Completed),
        (Channel::Marketplace, OrderStatus::Completed),
        (Channel::Social, OrderStatus::Cancelled),
        (Channel::Marketplace, OrderStatus::Cancelled),
    ];
    let mut counts: Vec<(OrderStatus, usize)> = OrderStatus::ALL.iter().map(|s| (*s, 0)).collect();
    let mut unpaid_payments = Vec::new();
    for (i, (channel, target)) in plan.iter().enumerate() {
        let buyer = BUYERS[i % BUYERS.len()];
        let lines = vec![
            CheckoutLine { sku_id: skus[i % skus.len()], quantity: Quantity::new(1 + (i % 2) as i64)? },
            CheckoutLine { sku_id: skus[(i * 5 + 3) % skus.len()], quantity: Quantity::new(1)? },
        ];
        let request = CheckoutRequest::new(
            *channel,
            BuyerId::parse(&format!("{}-buyer-{:04}", channel.as_str(), 17 + i * 31))?,
            lines,
            ShippingAddress::parse(buyer.0, buyer.1, buyer.2, buyer.3, buyer.4, buyer.5)?,
            match (i % 4, target) {
                // A cash-on-delivery order is accepted at once: it never awaits payment.
                (3, OrderStatus::AwaitingPayment) | (0, _) => PaymentMethod::Qris,
                (1, _) => PaymentMethod::VirtualAccount,
                (2, _) => PaymentMethod::Ewallet,
                _ => PaymentMethod::CashOnDelivery,
            },
        )?;
        let via = Principal::Channel(*channel);
        let checkout = core.checkout(&via, request, None).await?;
        let steps: &[OrderAction] = match target {
            OrderStatus::AwaitingPayment => &[],
            OrderStatus::Paid => &[OrderAction::Pay],
            OrderStatus::Shipped => &[OrderAction::Pay, OrderAction::Ship],
            OrderStatus::Delivered => &[OrderAction::Pay, OrderAction::Ship, OrderAction::Deliver],
            OrderStatus::Completed => {
                &[OrderAction::Pay, OrderAction::Ship, OrderAction::Deliver, OrderAction::Confirm]
            }
            OrderStatus::Cancelled => &[OrderAction::Cancel],
        };
        let payment = checkout.payment.as_ref().map(|p| p.id).expect("a checkout opens its payment");
        let cod = checkout.payment_method == PaymentMethod::CashOnDelivery;
        if *target == OrderStatus::AwaitingPayment {
            unpaid_payments.push(payment);
        }
        if steps.first() == Some(&OrderAction::Pay) && !cod {
            // The provider simulator's signed callback, through the one completion path.
            core.provider_pays(payment, None).await?;
        }
        for order in &checkout.orders {
            for step in steps.iter().filter(|s| **s != OrderAction::Pay) {
                let actor = match step {
                    OrderAction::Confirm | OrderAction::Cancel => via.clone(),
                    _ => Principal::Merchant(order.merchant_id),
                };
                core.transition_order(&actor, order.id, *step, None).await?;
                if cod && *step == OrderAction::Deliver {
                    // The courier collected the cash and the provider remits it.
                    core.provider_pays(payment, None).await?;
                }
            }
            if let Some(entry) = counts.iter_mut().find(|(s, _)| s == target) {
                entry.1 += 1;
            }
        }
    }
    Ok(DemoSummary { merchants, orders_by_status: counts, unpaid_payments })
}
