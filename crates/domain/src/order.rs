//! The order state machine of DESIGN.md §4:
//!
//! ```text
//! awaiting_payment ─pay─► paid ─ship─► shipped ─deliver─► delivered ─confirm─► completed
//!        │                 │
//!        └────cancel───────┴──► cancelled          (only before shipping)
//! ```
//! Every other (state, action) pair is an illegal transition and an error. Each legal
//! transition also says what it does to the stock the order reserved.

use crate::error::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    AwaitingPayment,
    Paid,
    Shipped,
    Delivered,
    Completed,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::AwaitingPayment,
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Completed,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::AwaitingPayment => "awaiting_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Completed => "completed",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Result<OrderStatus, DomainError> {
        OrderStatus::ALL.into_iter().find(|s| s.as_str() == raw).ok_or_else(|| {
            DomainError::invalid(
                "status",
                "must be one of awaiting_payment, paid, shipped, delivered, completed, cancelled",
            )
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, OrderStatus::Completed | OrderStatus::Cancelled)
    }

    /// The state after `action`, or the error naming both.
    pub fn apply(self, action: OrderAction) -> Result<OrderStatus, DomainError> {
        use OrderAction as A;
        use OrderStatus as S;
        let next = match (self, action) {
            (S::AwaitingPayment, A::Pay) => S::Paid,
            (S::Paid, A::Ship) => S::Shipped,
            (S::Shipped, A::Deliver) => S::Delivered,
            (S::Delivered, A::Confirm) => S::Completed,
            (S::AwaitingPayment | S::Paid, A::Cancel) => S::Cancelled,
            (from, action) => return Err(DomainError::IllegalTransition { from, action }),
        };
        Ok(next)
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderAction {
    Pay,
    Ship,
    Deliver,
    Confirm,
    Cancel,
}

impl OrderAction {
    pub const ALL: [OrderAction; 5] = [
        OrderAction::Pay,
        OrderAction::Ship,
        OrderAction::Deliver,
        OrderAction::Confirm,
        OrderAction::Cancel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderAction::Pay => "pay",
            OrderAction::Ship => "ship",
            OrderAction::Deliver => "deliver",
            OrderAction::Confirm => "confirm",
            OrderAction::Cancel => "cancel",
        }
    }

    /// Past participle for messages: "an order that is shipped cannot be cancelled".
    fn participle(self) -> &'static str {
        match self {
            OrderAction::Pay => "paid",
            OrderAction::Ship => "shipped",
            OrderAction::Deliver => "delivered",
            OrderAction::Confirm => "confirmed",
            OrderAction::Cancel => "cancelled",
        }
    }

    /// What a legal transition does to the order's reserved stock.
    pub fn stock_effect(self) -> StockEffect {
        match self {
            OrderAction::Cancel => StockEffect::Release,
            OrderAction::Ship => StockEffect::CommitSale,
            OrderAction::Pay | OrderAction::Deliver | OrderAction::Confirm => StockEffect::None,
        }
    }
}

impl std::fmt::Display for OrderAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.participle())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockEffect {
    None,
    /// Reserved units return to available.
    Release,
    /// Reserved units leave stock on hand.
    CommitSale,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rank(s: OrderStatus) -> u8 {
        match s {
            OrderStatus::AwaitingPayment => 0,
            OrderStatus::Paid => 1,
            OrderStatus::Shipped => 2,
            OrderStatus::Delivered => 3,
            OrderStatus::Completed | OrderStatus::Cancelled => 4,
        }
    }

    #[test]
    fn the_table() {
        use OrderAction as A;
        use OrderStatus as S;
        let legal = [
            (S::AwaitingPayment, A::Pay, S::Paid),
            (S::Paid, A::Ship, S::Shipped),
            (S::Shipped, A::Deliver, S::Delivered),
            (S::Delivered, A::Confirm, S::Completed),
            (S::AwaitingPayment, A::Cancel, S::Cancelled),
            (S::Paid, A::Cancel, S::Cancelled),
        ];
        for from in OrderStatus::ALL {
            for action in OrderAction::ALL {
                let expected =
                    legal.iter().find(|(f, a, _)| *f == from && *a == action).map(|(_, _, to)| *to);
                match (from.apply(action), expected) {
                    (Ok(to), Some(want)) => assert_eq!(to, want),
                    (Err(DomainError::IllegalTransition { .. }), None) => {}
                    (got, want) => panic!("{from} {action:?}: got {got:?}, want {want:?}"),
                }
            }
        }
        assert_eq!(
            S::Shipped.apply(A::Cancel).unwrap_err().to_string(),
            "an order that is shipped cannot be cancelled"
        );
    }

    proptest! {
        /// Random action sequences: only legal steps change the state, the state only moves
        /// forward, terminal states absorb everything, and stock is released or sold at most
        /// once per order.
        #[test]
        fn random_sequences(actions in prop::collection::vec(prop::sample::select(OrderAction::ALL.to_vec()), 0..40)) {
            let mut state = OrderStatus::AwaitingPayment;
            let mut stock_settled = 0;
            for action in actions {
                match state.apply(action) {
                    Ok(next) => {
                        prop_assert!(rank(next) > rank(state));
                        prop_assert!(!state.is_terminal());
                        if action.stock_effect() != StockEffect::None { stock_settled += 1; }
                        state = next;
                    }
                    Err(error) => {
                        let illegal = matches!(error, DomainError::IllegalTransition { from, action: a } if from == state && a == action);
                        prop_assert!(illegal, "{error}");
                    }
                }
                prop_assert!(stock_settled <= 1);
            }
        }
    }
}
