//! Checkouts and orders: reservation of stock, one order per merchant, and the order state
//! machine carried out with conditional updates.

use crate::db::{Conn, Row, insert_many, q};
use jembatan_domain::{
    BuyerId, Category, Channel, CheckoutId, CheckoutRequest, DomainError, MerchantId, Money, OrderAction,
    OrderDraft, OrderId, OrderStatus, PaymentMethod, Price, PricedSku, Quantity, ShippingAddress, SkuId,
    StockEffect, Timestamp, plan_orders,
};

use crate::error::StoreError;
use crate::exec::{Idem, Store, WriteCtx};
use crate::journal::{self, Change};
use crate::payments::{NewPayment, PaymentRecord, insert_payment, load_payment_of_checkout, set_held};
use crate::{new_id, rows};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLineRecord {
    pub line_no: u32,
    pub sku_id: SkuId,
    pub quantity: Quantity,
    pub unit_price: Price,
    pub line_total: Money,
    /// The platform fee on this line, fixed at the sale.
    pub fee: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    pub id: OrderId,
    pub merchant_id: MerchantId,
    pub checkout_id: CheckoutId,
    pub channel: Channel,
    pub buyer_id: BuyerId,
    pub status: OrderStatus,
    pub payment_method: PaymentMethod,
    pub total: Money,
    /// The platform fee, fixed at the sale: the merchant receives `total − fee` on release.
    pub fee: Money,
    /// Money of this order in escrow now (a cache of the ledger, checked by `jembatan check`).
    pub held: Money,
    /// Refunded so far.
    pub refunded: Money,
    pub shipping_address: ShippingAddress,
    pub lines: Vec<OrderLineRecord>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Placed while the shop's catalogue and stock were in the social shop's legacy store: that
    /// store took the stock, the core holds the payment and escrow (see [`Store::checkout_legacy`]).
    pub legacy_origin: bool,
    /// For a legacy-origin order: its shop's stock has moved to the core since, so a
    /// cancellation returns its units to the core's SKU.
    pub legacy_stock_moved: bool,
}

/// How a checkout's lines are priced and their stock taken.
pub enum Pricing {
    /// From the core's SKUs, reserving their stock.
    Reserve,
    /// Priced by the social shop's legacy store, which took the stock itself; the SKU ids are
    /// the core ids mapped to the legacy SKUs.
    Legacy(Vec<PricedSku>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRecord {
    pub id: CheckoutId,
    pub channel: Channel,
    pub buyer_id: BuyerId,
    pub payment_method: PaymentMethod,
    pub total: Money,
    pub created_at: Timestamp,
    pub orders: Vec<OrderRecord>,
    /// The checkout's payment (every checkout has one).
    pub payment: Option<PaymentRecord>,
}

const ORDER_COLUMNS: &str = "merchant_id, order_id, checkout_id, channel, buyer_id, status, payment_method, total_idr, fee_idr, \
     held_idr, refunded_idr, recipient_name, recipient_phone, street, city, province, postal_code, created_at_ms, updated_at_ms, origin, legacy_stock_moved";

impl Store {
    /// Reserves stock for every line (in SKU id order) and writes one order per merchant. Either
    /// every line is reserved and every order written, or nothing is.
    pub async fn checkout(
        &self,
        ctx: WriteCtx,
        request: CheckoutRequest,
        payment: NewPayment,
        idem: Option<Idem<CheckoutRecord>>,
    ) -> Result<CheckoutRecord, StoreError> {
        self.write(idem, move |conn| Box::pin(checkout_unit(conn, ctx, request, payment, Pricing::Reserve)))
            .await
    }

    /// A social order: one shop's order, priced from the core's SKUs (`Pricing::Reserve`) or,
    /// while the shop's catalogue and stock are still in the legacy store, by that store
    /// (`Pricing::Legacy`: no stock reserved here; compliance rule R1 puts every payment in the
    /// core all the same). The social order id is mapped to the order in the same unit, so a
    /// second checkout for the same social order is a conflict.
    pub async fn checkout_social(
        &self,
        ctx: WriteCtx,
        request: CheckoutRequest,
        pricing: Pricing,
        social_order_id: String,
        payment: NewPayment,
    ) -> Result<CheckoutRecord, StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                let record = checkout_unit(conn, ctx, request, payment, pricing).await?;
                let [order] = record.orders.as_slice() else {
                    return Err(StoreError::Domain(DomainError::invalid(
                        "items",
                        "a social order is placed with one shop: its items must all be of that shop",
                    )));
                };
                crate::social::insert_id(
                    conn,
                    crate::social::IdKind::Order,
                    &social_order_id,
                    order.merchant_id,
                    &order.id.to_string(),
                )
                .await?;
                Ok(record)
            })
        })
        .await
    }

    pub async fn order(&self, id: OrderId) -> Result<Option<OrderRecord>, StoreError> {
        self.read(move |conn| Box::pin(load_order(conn, id, false))).await
    }

    pub async fn checkout_record(&self, id: CheckoutId) -> Result<Option<CheckoutRecord>, StoreError> {
        self.read(move |conn| Box::pin(load_checkout(conn, id))).await
    }

    /// One merchant's orders, newest first, optionally of one status, after the cursor `before`.
    pub async fn orders_of_merchant(
        &self,
        merchant_id: MerchantId,
        status: Option<OrderStatus>,
        before: Option<OrderId>,
        limit: u32,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        // "" stands for "no cursor" (no sentinel id: its order would depend on the collation).
        let before = before.map(|b| b.to_string()).unwrap_or_default();
        self.read(move |conn| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {ORDER_COLUMNS} FROM orders
                     WHERE merchant_id = $1 AND ($2 = '' OR order_id < $2) AND ($3 = '' OR status = $3)
                     ORDER BY order_id DESC LIMIT $4"
                );
                let rows = q(sql)
                    .bind(merchant_id.to_string())
                    .bind(before)
                    .bind(status.map(|s| s.as_str()).unwrap_or(""))
                    .bind(i64::from(limit))
                    .fetch_all(&mut *conn)
                    .await?;
                let mut orders = rows.iter().map(decode_order).collect::<Result<Vec<_>, _>>()?;
                attach_lines(conn, merchant_id, &mut orders).await?;
                Ok(orders)
            })
        })
        .await
    }

    /// Applies `action` to an order: the status moves only if it is still what was read, and the
    /// order's reserved stock is released or sold in the same unit.
    pub async fn transition_order(
        &self,
        ctx: WriteCtx,
        order_id: OrderId,
        action: OrderAction,
        idem: Option<Idem<OrderRecord>>,
    ) -> Result<OrderRecord, StoreError> {
        self.write(idem, move |conn| Box::pin(transition_unit(conn, ctx, order_id, action))).await
    }
}

async fn checkout_unit(
    conn: &mut dyn Conn,
    ctx: WriteCtx,
    request: CheckoutRequest,
    payment: NewPayment,
    pricing: Pricing,
) -> Result<CheckoutRecord, StoreError> {
    let legacy_origin = matches!(pricing, Pricing::Legacy(_));
    let mut priced = match pricing {
        Pricing::Legacy(priced) => priced,
        Pricing::Reserve => Vec::with_capacity(request.lines().len()),
    };
    // Lines come in SKU id order: rows are locked in one global order, so concurrent checkouts
    // cannot deadlock on PostgreSQL.
    for line in request.lines().iter().filter(|_| !legacy_origin) {
        let units = i64::from(line.quantity.units());
        let reserved = q("UPDATE skus SET stock_reserved = stock_reserved + $1
             WHERE sku_id = $2 AND stock_on_hand - stock_reserved >= $1 AND listed = 1
             RETURNING merchant_id, price_idr, category")
        .bind(units)
        .bind(line.sku_id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = reserved else {
            let stock =
                q("SELECT stock_on_hand - stock_reserved AS available, listed FROM skus WHERE sku_id = $1")
                    .bind(line.sku_id.to_string())
                    .fetch_optional(&mut *conn)
                    .await?;
            let on_sale = stock.as_ref().map(|r| r.int("listed")).transpose()?.is_some_and(|l| l != 0);
            return Err(match stock {
                Some(row) if on_sale => DomainError::InsufficientStock {
                    sku: Some(line.sku_id.to_string()),
                    available: rows::int(&row, "available")?.max(0) as u32,
                    requested: line.quantity.units(),
                }
                .into(),
                _ => DomainError::invalid("items.sku_id", format!("{} is not a SKU on sale", line.sku_id))
                    .into(),
            });
        };
        priced.push(PricedSku {
            sku_id: line.sku_id,
            merchant_id: rows::id(&row, "merchant_id")?,
            price: rows::parsed("price_idr", Price::from_rupiah(rows::int(&row, "price_idr")?))?,
            category: rows::parsed("category", Category::parse(&rows::text(&row, "category")?))?,
        });
    }
    if !legacy_origin {
        // Invariant 6: a legacy-owned merchant's stock is the legacy store's to sell.
        let mut merchants: Vec<MerchantId> = priced.iter().map(|p| p.merchant_id).collect();
        merchants.sort();
        merchants.dedup();
        for merchant in merchants {
            crate::social::ensure_core_owned(conn, merchant).await?;
        }
    }
    let drafts = plan_orders(&request, &priced)?;
    let checkout_id: CheckoutId = new_id();
    let mut total = Money::ZERO;
    for draft in &drafts {
        total = total.checked_add(draft.total)?;
    }
    q(
        "INSERT INTO checkouts (checkout_id, channel, buyer_id, payment_method, total_idr, orders_count, created_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(checkout_id.to_string())
    .bind(request.channel.as_str())
    .bind(request.buyer_id.as_str())
    .bind(request.payment_method.as_str())
    .bind(total.rupiah())
    .bind(drafts.len() as i64)
    .bind(ctx.now.unix_ms())
    .execute(&mut *conn)
    .await?;
    let mut orders = Vec::with_capacity(drafts.len());
    for draft in drafts {
        let kind = if legacy_origin { Placed::LegacyTwin } else { Placed::Core };
        orders.push(insert_order(conn, &ctx, &request, checkout_id, draft, kind).await?);
    }
    let change = Change {
        event_type: "checkout.created",
        action: "checkout.create",
        entity_type: "checkout",
        entity_id: checkout_id.to_string(),
        merchant_id: None,
        channel: Some(request.channel),
        payload: serde_json::json!({
            "checkout_id": checkout_id.to_string(),
            "channel": request.channel.as_str(),
            "total": total.rupiah(),
            "order_ids": orders.iter().map(|o: &OrderRecord| o.id.to_string()).collect::<Vec<_>>(),
        }),
    };
    journal::record(conn, &ctx, change).await?;
    let payment = insert_payment(conn, &ctx, checkout_id, request.payment_method, total, payment).await?;
    Ok(CheckoutRecord {
        id: checkout_id,
        channel: request.channel,
        buyer_id: request.buyer_id,
        payment_method: request.payment_method,
        total,
        created_at: ctx.now,
        orders,
        payment: Some(payment),
    })
}

/// Where an order being inserted comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Placed {
    /// A checkout in the core.
    Core,
    /// The core twin of a legacy shop's order (its stock is the legacy store's).
    LegacyTwin,
    /// A legacy order copied by the migration engine, as it stands, placed when it was.
    Imported { status: OrderStatus, placed_at: Timestamp },
}

pub(crate) async fn insert_order(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    request: &CheckoutRequest,
    checkout_id: CheckoutId,
    draft: OrderDraft,
    placed: Placed,
) -> Result<OrderRecord, StoreError> {
    let mut records = insert_orders(conn, ctx, vec![(request, checkout_id, draft, placed)]).await?;
    Ok(records.pop().expect("one order in, one record out"))
}

/// Inserts orders with their lines and journal in multi-row statements, in the caller's unit.
pub(crate) async fn insert_orders(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    orders: Vec<(&CheckoutRequest, CheckoutId, OrderDraft, Placed)>,
) -> Result<Vec<OrderRecord>, StoreError> {
    let mut order_rows = Vec::with_capacity(orders.len());
    let mut line_rows = Vec::new();
    let mut changes = Vec::with_capacity(orders.len());
    let mut records = Vec::with_capacity(orders.len());
    for (request, checkout_id, draft, placed) in orders {
        let order_id: OrderId = new_id();
        let address = &request.shipping_address;
        let legacy_origin = !matches!(placed, Placed::Core);
        let (status, placed_at, (event_type, action)) = match placed {
            Placed::Imported { status, placed_at } => (status, placed_at, ("order.imported", "order.import")),
            // Cash on delivery: accepted at once, to be paid to the courier (see `payments`).
            _ if request.payment_method == PaymentMethod::CashOnDelivery => {
                (OrderStatus::Paid, ctx.now, ("order.created", "order.create"))
            }
            _ => (OrderStatus::AwaitingPayment, ctx.now, ("order.created", "order.create")),
        };
        let merchant = draft.merchant_id.to_string();
        order_rows.push(vec![
            merchant.clone().into(),
            order_id.to_string().into(),
            checkout_id.to_string().into(),
            request.channel.as_str().into(),
            request.buyer_id.as_str().into(),
            status.as_str().into(),
            request.payment_method.as_str().into(),
            draft.total.rupiah().into(),
            address.recipient_name.as_str().into(),
            address.phone.as_str().into(),
            address.street.as_str().into(),
            address.city.as_str().into(),
            address.province.as_str().into(),
            address.postal_code.as_str().into(),
            placed_at.unix_ms().into(),
            placed_at.unix_ms().into(),
            1i64.into(),
            draft.fee.rupiah().into(),
            if legacy_origin { "legacy" } else { "core" }.into(),
        ]);
        let mut lines = Vec::with_capacity(draft.lines.len());
        for (index, line) in draft.lines.into_iter().enumerate() {
            let line_no = index as u32 + 1;
            line_rows.push(vec![
                merchant.clone().into(),
                order_id.to_string().into(),
                i64::from(line_no).into(),
                line.sku_id.to_string().into(),
                i64::from(line.quantity.units()).into(),
                line.unit_price.money().rupiah().into(),
                line.line_total.rupiah().into(),
                line.fee.rupiah().into(),
            ]);
            lines.push(OrderLineRecord {
                line_no,
                sku_id: line.sku_id,
                quantity: line.quantity,
                unit_price: line.unit_price,
                line_total: line.line_total,
                fee: line.fee,
            });
        }
        changes.push(Change {
            event_type,
            action,
            entity_type: "order",
            entity_id: order_id.to_string(),
            merchant_id: Some(draft.merchant_id),
            channel: Some(request.channel),
            payload: serde_json::json!({
                "order_id": order_id.to_string(),
                "checkout_id": checkout_id.to_string(),
                "merchant_id": merchant,
                "status": status.as_str(),
                "total": draft.total.rupiah(),
            }),
        });
        records.push(OrderRecord {
            id: order_id,
            merchant_id: draft.merchant_id,
            checkout_id,
            channel: request.channel,
            buyer_id: request.buyer_id.clone(),
            status,
            payment_method: request.payment_method,
            total: draft.total,
            fee: draft.fee,
            held: Money::ZERO,
            refunded: Money::ZERO,
            shipping_address: address.clone(),
            lines,
            created_at: placed_at,
            updated_at: placed_at,
            legacy_origin,
            legacy_stock_moved: false,
        });
    }
    insert_many(
        conn,
        "INSERT INTO orders (merchant_id, order_id, checkout_id, channel, buyer_id, status, payment_method, total_idr,
             recipient_name, recipient_phone, street, city, province, postal_code, created_at_ms, updated_at_ms, version, fee_idr, origin)",
        19,
        order_rows,
        "",
    )
    .await?;
    insert_many(
        conn,
        "INSERT INTO order_lines (merchant_id, order_id, line_no, sku_id, quantity, unit_price_idr, line_total_idr, fee_idr)",
        8,
        line_rows,
        "",
    )
    .await?;
    journal::record_many(conn, ctx, changes).await?;
    Ok(records)
}

async fn transition_unit(
    conn: &mut dyn Conn,
    ctx: WriteCtx,
    order_id: OrderId,
    action: OrderAction,
) -> Result<OrderRecord, StoreError> {
    let order =
        load_order(conn, order_id, true).await?.ok_or_else(|| StoreError::not_found("order", order_id))?;
    transition_loaded(conn, ctx, order, action).await
}

/// Moves an order already read in this unit (the status update still checks it is unchanged).
pub(crate) async fn transition_loaded(
    conn: &mut dyn Conn,
    ctx: WriteCtx,
    order: OrderRecord,
    action: OrderAction,
) -> Result<OrderRecord, StoreError> {
    let order_id = order.id;
    let next = order.status.apply(action)?;
    let moved = q("UPDATE orders SET status = $3, updated_at_ms = $4, version = version + 1,
             delivered_at_ms = CASE WHEN $3 = 'delivered' THEN $4 ELSE delivered_at_ms END
         WHERE merchant_id = $1 AND order_id = $2 AND status = $5")
    .bind(order.merchant_id.to_string())
    .bind(order_id.to_string())
    .bind(next.as_str())
    .bind(ctx.now.unix_ms())
    .bind(order.status.as_str())
    .execute(&mut *conn)
    .await?;
    if moved != 1 {
        return Err(StoreError::Conflict(format!(
            "order {order_id} changed while being {action}: read it again and retry"
        )));
    }
    let stock_sql = match action.stock_effect() {
        // A legacy-origin order's units were taken by the legacy store when it was placed.
        // Cancelled after its shop's stock moved to the core, they come back to the core's
        // SKU (copied from the legacy one, so without them); before, the gateway gives them
        // back in the legacy store (see `social::complete_shop_move` for the flip between).
        StockEffect::Release if order.legacy_origin && order.legacy_stock_moved => Some(
            "UPDATE skus SET stock_on_hand = stock_on_hand + $3 WHERE merchant_id = $1 AND sku_id = $2 AND $3 > 0",
        ),
        _ if order.legacy_origin => None,
        StockEffect::None => None,
        StockEffect::Release => Some(
            "UPDATE skus SET stock_reserved = stock_reserved - $3
             WHERE merchant_id = $1 AND sku_id = $2 AND stock_reserved >= $3",
        ),
        StockEffect::CommitSale => Some(
            "UPDATE skus SET stock_on_hand = stock_on_hand - $3, stock_reserved = stock_reserved - $3
             WHERE merchant_id = $1 AND sku_id = $2 AND stock_reserved >= $3",
        ),
    };
    if let Some(sql) = stock_sql {
        let mut lines = order.lines.clone();
        lines.sort_by_key(|l| l.sku_id);
        for line in &lines {
            let done = q(sql)
                .bind(order.merchant_id.to_string())
                .bind(line.sku_id.to_string())
                .bind(i64::from(line.quantity.units()))
                .execute(&mut *conn)
                .await?;
            // The order reserved these units itself; if they are not there, stock was corrupted.
            if done != 1 && !order.legacy_origin {
                tracing::error!(%order_id, sku_id = %line.sku_id, "reserved stock missing for order");
                return Err(StoreError::Conflict(format!(
                    "stock of {} does not hold the units reserved by order {order_id}",
                    line.sku_id
                )));
            }
        }
    }
    let mut order = order;
    escrow(conn, &ctx, &mut order, action).await?;
    let (event_type, audit_action) = match action {
        OrderAction::Pay => ("order.paid", "order.pay"),
        OrderAction::Ship => ("order.shipped", "order.ship"),
        OrderAction::Deliver => ("order.delivered", "order.deliver"),
        OrderAction::Confirm => ("order.completed", "order.confirm"),
        OrderAction::Cancel => ("order.cancelled", "order.cancel"),
    };
    let change = Change {
        event_type,
        action: audit_action,
        entity_type: "order",
        entity_id: order_id.to_string(),
        merchant_id: Some(order.merchant_id),
        channel: Some(order.channel),
        payload: serde_json::json!({
            "order_id": order_id.to_string(),
            "merchant_id": order.merchant_id.to_string(),
            "from": order.status.as_str(),
            "status": next.as_str(),
        }),
    };
    journal::record(conn, &ctx, change).await?;
    Ok(OrderRecord { status: next, updated_at: ctx.now, ..order })
}

pub(crate) async fn load_order(
    conn: &mut dyn Conn,
    id: OrderId,
    for_update: bool,
) -> Result<Option<OrderRecord>, StoreError> {
    let lock = crate::db::lock_clause(conn, for_update);
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = $1{lock}");
    let row = q(sql).bind(id.to_string()).fetch_optional(&mut *conn).await?;
    let Some(row) = row else { return Ok(None) };
    let mut orders = vec![decode_order(&row)?];
    let merchant_id = orders[0].merchant_id;
    attach_lines(conn, merchant_id, &mut orders).await?;
    Ok(orders.pop())
}

async fn load_checkout(conn: &mut dyn Conn, id: CheckoutId) -> Result<Option<CheckoutRecord>, StoreError> {
    let row = q(
        "SELECT checkout_id, channel, buyer_id, payment_method, total_idr, created_at_ms FROM checkouts WHERE checkout_id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let orders = load_checkout_orders(conn, id, false).await?;
    let payment = load_payment_of_checkout(conn, id).await?;
    Ok(Some(CheckoutRecord {
        id,
        channel: rows::parsed("channel", Channel::parse(&rows::text(&row, "channel")?))?,
        buyer_id: rows::parsed("buyer_id", BuyerId::parse(&rows::text(&row, "buyer_id")?))?,
        payment_method: rows::parsed(
            "payment_method",
            PaymentMethod::parse(&rows::text(&row, "payment_method")?),
        )?,
        total: rows::parsed("total_idr", Money::from_rupiah(rows::int(&row, "total_idr")?))?,
        created_at: Timestamp::from_unix_ms(rows::int(&row, "created_at_ms")?),
        orders,
        payment,
    }))
}

/// The orders of a checkout, by merchant id.
pub(crate) async fn load_checkout_orders(
    conn: &mut dyn Conn,
    id: CheckoutId,
    for_update: bool,
) -> Result<Vec<OrderRecord>, StoreError> {
    let order_ids: Vec<OrderId> =
        q("SELECT order_id FROM orders WHERE checkout_id = $1 ORDER BY merchant_id")
            .bind(id.to_string())
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| rows::id(r, "order_id"))
            .collect::<Result<_, _>>()?;
    let mut orders = Vec::with_capacity(order_ids.len());
    for order_id in order_ids {
        orders.extend(load_order(conn, order_id, for_update).await?);
    }
    Ok(orders)
}

/// Loads the lines of `orders` (all of one merchant) in one query.
async fn attach_lines(
    conn: &mut dyn Conn,
    merchant_id: MerchantId,
    orders: &mut [OrderRecord],
) -> Result<(), StoreError> {
    if orders.is_empty() {
        return Ok(());
    }
    let placeholders: Vec<String> = (0..orders.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT order_id, line_no, sku_id, quantity, unit_price_idr, line_total_idr, fee_idr FROM order_lines
         WHERE merchant_id = $1 AND order_id IN ({}) ORDER BY order_id, line_no",
        placeholders.join(", ")
    );
    let mut query = q(sql).bind(merchant_id.to_string());
    for order in orders.iter() {
        query = query.bind(order.id.to_string());
    }
    for row in query.fetch_all(&mut *conn).await? {
        let order_id: OrderId = rows::id(&row, "order_id")?;
        let line = OrderLineRecord {
            line_no: rows::int(&row, "line_no")? as u32,
            sku_id: rows::id(&row, "sku_id")?,
            quantity: rows::parsed("quantity", Quantity::new(rows::int(&row, "quantity")?))?,
            unit_price: rows::parsed(
                "unit_price_idr",
                Price::from_rupiah(rows::int(&row, "unit_price_idr")?),
            )?,
            line_total: rows::parsed(
                "line_total_idr",
                Money::from_rupiah(rows::int(&row, "line_total_idr")?),
            )?,
            fee: rows::parsed("fee_idr", Money::from_rupiah(rows::int(&row, "fee_idr")?))?,
        };
        if let Some(order) = orders.iter_mut().find(|o| o.id == order_id) {
            order.lines.push(line);
        }
    }
    Ok(())
}

fn decode_order(row: &Row) -> Result<OrderRecord, StoreError> {
    let address = ShippingAddress::parse(
        &rows::text(row, "recipient_name")?,
        &rows::text(row, "recipient_phone")?,
        &rows::text(row, "street")?,
        &rows::text(row, "city")?,
        &rows::text(row, "province")?,
        &rows::text(row, "postal_code")?,
    );
    Ok(OrderRecord {
        id: rows::id(row, "order_id")?,
        merchant_id: rows::id(row, "merchant_id")?,
        checkout_id: rows::id(row, "checkout_id")?,
        channel: rows::parsed("channel", Channel::parse(&rows::text(row, "channel")?))?,
        buyer_id: rows::parsed("buyer_id", BuyerId::parse(&rows::text(row, "buyer_id")?))?,
        status: rows::parsed("status", OrderStatus::parse(&rows::text(row, "status")?))?,
        payment_method: rows::parsed(
            "payment_method",
            PaymentMethod::parse(&rows::text(row, "payment_method")?),
        )?,
        total: rows::parsed("total_idr", Money::from_rupiah(rows::int(row, "total_idr")?))?,
        fee: rows::parsed("fee_idr", Money::from_rupiah(rows::int(row, "fee_idr")?))?,
        held: rows::parsed("held_idr", Money::from_rupiah(rows::int(row, "held_idr")?))?,
        refunded: rows::parsed("refunded_idr", Money::from_rupiah(rows::int(row, "refunded_idr")?))?,
        shipping_address: rows::parsed("shipping_address", address)?,
        lines: Vec::new(),
        created_at: Timestamp::from_unix_ms(rows::int(row, "created_at_ms")?),
        updated_at: Timestamp::from_unix_ms(rows::int(row, "updated_at_ms")?),
        legacy_origin: rows::text(row, "origin")? == "legacy",
        legacy_stock_moved: rows::int(row, "legacy_stock_moved")? == 1,
    })
}

/// The money side of an order's transition (DESIGN.md §4): payment holds the total in escrow
/// (a pending transfer from provider clearing); the buyer's confirmation releases it to the
/// merchant's balance and the platform's fee revenue ([`release`]); a cancellation after payment
/// refunds everything still held.
async fn escrow(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    order: &mut OrderRecord,
    action: OrderAction,
) -> Result<(), StoreError> {
    match (order.status, action) {
        (_, OrderAction::Pay) => hold(conn, ctx, order).await,
        (OrderStatus::Delivered, OrderAction::Confirm) if order.held > Money::ZERO => {
            release(conn, ctx, order).await
        }
        (OrderStatus::Delivered, OrderAction::Confirm)
            if order.payment_method == PaymentMethod::CashOnDelivery && order.refunded == Money::ZERO =>
        {
            Err(StoreError::Conflict(format!(
                "order {} is paid in cash on delivery and the courier has not remitted the cash yet: it can be confirmed once the money is in escrow",
                order.id
            )))
        }
        (OrderStatus::Paid, OrderAction::Cancel) if order.held > Money::ZERO => {
            // The buyer paid: everything still held goes back to the buyer as a refund (the
            // provider carries it out; the settlement report lists it).
            let rest = order.held;
            let source = crate::payments::Source::Held;
            crate::payments::refund_with(conn, ctx, order, rest, "order cancelled", source).await?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Holds an order's total in escrow: a pending transfer provider clearing → escrow, posted on
/// release (or by the first refund), its id derived from the order.
pub(crate) async fn hold(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    order: &mut OrderRecord,
) -> Result<(), StoreError> {
    use jembatan_domain::ledger::{
        AccountKind, NewTransfer, Purpose, TransferKind, order_transfer_id, platform_account,
    };
    let transfer = NewTransfer {
        id: order_transfer_id(order.id, Purpose::EscrowHold),
        debit: platform_account(AccountKind::ProviderClearing),
        credit: platform_account(AccountKind::Escrow),
        amount: order.total,
        kind: TransferKind::Pending { timeout_ms: 0 },
        linked: false,
        code: Purpose::EscrowHold as u16,
    };
    crate::ledger::apply_all(conn, ctx, vec![transfer]).await?;
    let (total, refunded) = (order.total, order.refunded);
    set_held(conn, order, total, refunded).await
}

/// Releases an order's escrow: posts the hold (unless a refund already did) and pays, linked,
/// what is left after refunds to the merchant's balance minus the fee kept, and the fee kept to
/// the platform's fee revenue.
pub(crate) async fn release(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    order: &mut OrderRecord,
) -> Result<(), StoreError> {
    use jembatan_domain::ledger::{
        AccountKind, NewTransfer, Purpose, TransferKind, merchant_balance_account, order_transfer_id,
        platform_account,
    };
    let escrow = platform_account(AccountKind::Escrow);
    let transfer = |purpose: Purpose, debit, credit, amount: Money, kind| NewTransfer {
        id: order_transfer_id(order.id, purpose),
        debit,
        credit,
        amount,
        kind,
        linked: true,
        code: purpose as u16,
    };
    crate::ledger::ensure_accounts(conn, ctx, &[crate::ledger::merchant_account(order.merchant_id)]).await?;
    let fee = jembatan_domain::payment::fee_kept(order.total, order.fee, order.refunded)?;
    let to_merchant = order.held.checked_sub(fee)?;
    let mut batch = Vec::new();
    if order.refunded == Money::ZERO {
        let pending = order_transfer_id(order.id, Purpose::EscrowHold);
        let provider = platform_account(AccountKind::ProviderClearing);
        batch.push(transfer(
            Purpose::EscrowPost,
            provider,
            escrow,
            order.total,
            TransferKind::Post { pending, amount: None },
        ));
    }
    if to_merchant > Money::ZERO {
        let merchant = merchant_balance_account(order.merchant_id);
        batch.push(transfer(Purpose::ReleaseToMerchant, escrow, merchant, to_merchant, TransferKind::Single));
    }
    if fee > Money::ZERO {
        let fees = platform_account(AccountKind::PlatformFeeRevenue);
        batch.push(transfer(Purpose::PlatformFee, escrow, fees, fee, TransferKind::Single));
    }
    if let Some(last) = batch.last_mut() {
        last.linked = false;
    }
    crate::ledger::apply_all(conn, ctx, batch).await?;
    let refunded = order.refunded;
    set_held(conn, order, Money::ZERO, refunded).await
}
