//! Who is asking: the role and subject a bearer token is bound to (DESIGN.md §2).

use crate::checkout::Channel;
use crate::error::DomainError;
use crate::id::MerchantId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Operator,
    Merchant,
    Channel,
    Regulator,
    Provider,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Merchant => "merchant",
            Role::Channel => "channel",
            Role::Regulator => "regulator",
            Role::Provider => "provider",
        }
    }

    pub fn parse(raw: &str) -> Result<Role, DomainError> {
        match raw {
            "operator" => Ok(Role::Operator),
            "merchant" => Ok(Role::Merchant),
            "channel" => Ok(Role::Channel),
            "regulator" => Ok(Role::Regulator),
            "provider" => Ok(Role::Provider),
            _ => Err(DomainError::invalid(
                "role",
                "must be operator, merchant, channel, regulator or provider",
            )),
        }
    }
}

/// An authenticated caller. The subject is part of the variant, so a merchant principal
/// without a merchant id cannot exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Operator,
    Merchant(MerchantId),
    Channel(Channel),
    Regulator,
    Provider,
}

impl Principal {
    pub fn role(&self) -> Role {
        match self {
            Principal::Operator => Role::Operator,
            Principal::Merchant(_) => Role::Merchant,
            Principal::Channel(_) => Role::Channel,
            Principal::Regulator => Role::Regulator,
            Principal::Provider => Role::Provider,
        }
    }

    /// The subject as stored with a token and written in audit entries.
    pub fn subject(&self) -> String {
        match self {
            Principal::Merchant(id) => id.to_string(),
            Principal::Channel(c) => c.as_str().to_owned(),
            other => other.role().as_str().to_owned(),
        }
    }

    /// Rebuilds a principal from a stored token's role and subject.
    pub fn from_parts(role: Role, subject: &str) -> Result<Principal, DomainError> {
        use crate::id::TypedId;
        Ok(match role {
            Role::Operator => Principal::Operator,
            Role::Merchant => Principal::Merchant(MerchantId::parse(subject)?),
            Role::Channel => Principal::Channel(Channel::parse(subject)?),
            Role::Regulator => Principal::Regulator,
            Role::Provider => Principal::Provider,
        })
    }
}
