//! The audit chain (DESIGN.md §7, invariant 8): every audit entry, once sealed, carries its
//! place in the chain (`seq`, from 1 with no gaps), the hash of the entry before it and its own
//! hash, which covers the previous hash and every field of the entry. Editing an entry changes
//! its hash; deleting one leaves a gap; moving one breaks the links around it. A daily digest
//! (the head of the chain: last seq, last hash, entries) is signed with the platform's Ed25519
//! key, so a history rewritten from some entry on — every later hash recomputed — still fails
//! against a digest signed before the rewrite.
//!
//! Pure: the store reads and writes the rows, this module computes and checks.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest as _, Sha256};

/// The hash before the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an audit entry says, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFields {
    pub audit_id: String,
    pub at_ms: i64,
    pub actor_role: String,
    pub actor_subject: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    pub merchant_id: Option<String>,
    pub detail: String,
}

/// A sealed entry: its fields and its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedEntry {
    pub seq: i64,
    pub fields: AuditFields,
    pub prev_hash: String,
    pub entry_hash: String,
}

/// SHA-256 (hex) of an entry at `seq` after `prev_hash`. Every field is length-prefixed, so no
/// two different entries serialise alike (a field cannot borrow characters from the next).
pub fn entry_hash(prev_hash: &str, seq: i64, f: &AuditFields) -> String {
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    field(b"jembatan-audit/v1");
    field(prev_hash.as_bytes());
    field(&seq.to_be_bytes());
    field(f.audit_id.as_bytes());
    field(&f.at_ms.to_be_bytes());
    field(f.actor_role.as_bytes());
    field(f.actor_subject.as_bytes());
    field(f.action.as_bytes());
    field(f.entity_type.as_bytes());
    field(f.entity_id.as_bytes());
    match &f.merchant_id {
        Some(m) => field(format!("+{m}").as_bytes()),
        None => field(b"-"),
    }
    field(f.detail.as_bytes());
    hex::encode(hasher.finalize())
}

/// Why the chain does not verify at an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// The entry's own hash does not match its fields: it was edited.
    Edited { seq: i64, audit_id: String },
    /// The entry does not link to the one before it: entries were reordered or replaced.
    Unlinked { seq: i64, audit_id: String },
    /// Entries are missing before this one: deleted.
    Missing { expected_seq: i64, found_seq: i64, audit_id: String },
}

impl ChainBreak {
    pub fn describe(&self) -> String {
        match self {
            ChainBreak::Edited { seq, audit_id } => {
                format!(
                    "entry {seq} ({audit_id}) does not match its hash: it was changed after it was sealed"
                )
            }
            ChainBreak::Unlinked { seq, audit_id } => format!(
                "entry {seq} ({audit_id}) does not link to entry {}: entries were reordered or replaced",
                seq - 1
            ),
            ChainBreak::Missing { expected_seq, found_seq, audit_id } => format!(
                "entries {expected_seq}..{} are missing before entry {found_seq} ({audit_id}): deleted",
                found_seq - 1
            ),
        }
    }

    pub fn seq(&self) -> i64 {
        match self {
            ChainBreak::Edited { seq, .. } | ChainBreak::Unlinked { seq, .. } => *seq,
            ChainBreak::Missing { expected_seq, .. } => *expected_seq,
        }
    }
}

/// Checks a chain fed in `seq` order, page by page; remembers the head.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_seq: i64,
    head_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier { next_seq: 1, head_hash: GENESIS_HASH.to_owned() }
    }
}

impl ChainVerifier {
    /// The next entry; the first break found, if any.
    pub fn check(&mut self, entry: &ChainedEntry) -> Result<(), ChainBreak> {
        let audit_id = entry.fields.audit_id.clone();
        if entry.seq != self.next_seq {
            return Err(if entry.seq > self.next_seq {
                ChainBreak::Missing { expected_seq: self.next_seq, found_seq: entry.seq, audit_id }
            } else {
                ChainBreak::Unlinked { seq: entry.seq, audit_id }
            });
        }
        if entry_hash(&entry.prev_hash, entry.seq, &entry.fields) != entry.entry_hash {
            return Err(ChainBreak::Edited { seq: entry.seq, audit_id });
        }
        if entry.prev_hash != self.head_hash {
            return Err(ChainBreak::Unlinked { seq: entry.seq, audit_id });
        }
        self.next_seq += 1;
        self.head_hash = entry.entry_hash.clone();
        Ok(())
    }

    /// Entries verified so far.
    pub fn verified(&self) -> i64 {
        self.next_seq - 1
    }

    pub fn head_hash(&self) -> &str {
        &self.head_hash
    }
}

/// The head of the chain at the end of a day, as signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestBody {
    /// The day (UTC, `YYYY-MM-DD`) the digest closes.
    pub day: String,
    pub last_seq: i64,
    pub last_hash: String,
    /// Entries sealed that day.
    pub entries: i64,
}

impl DigestBody {
    /// The exact bytes signed.
    pub fn message(&self) -> Vec<u8> {
        format!(
            "jembatan-audit-digest/v1\nday={}\nlast_seq={}\nlast_hash={}\nentries={}\n",
            self.day, self.last_seq, self.last_hash, self.entries
        )
        .into_bytes()
    }
}

/// The platform's signing key, from its 32 secret bytes.
pub fn signing_key(secret: &[u8; 32]) -> SigningKey {
    SigningKey::from_bytes(secret)
}

/// The public key (hex) a regulator verifies digests with.
pub fn public_key_hex(key: &SigningKey) -> String {
    hex::encode(key.verifying_key().to_bytes())
}

/// The signature (hex) of a digest.
pub fn sign(key: &SigningKey, body: &DigestBody) -> String {
    hex::encode(key.sign(&body.message()).to_bytes())
}

/// Whether `signature` (hex) is the key's (hex) signature of the digest.
pub fn verify_signature(public_key_hex: &str, body: &DigestBody, signature_hex: &str) -> Result<(), String> {
    let key: [u8; 32] = hex::decode(public_key_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the public key is not 32 bytes of hex")?;
    let key = VerifyingKey::from_bytes(&key).map_err(|e| format!("not an Ed25519 public key: {e}"))?;
    let signature: [u8; 64] = hex::decode(signature_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the signature is not 64 bytes of hex")?;
    key.verify(&body.message(), &Signature::from_bytes(&signature))
        .map_err(|_| "the signature does not match this digest and key".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(n: i64) -> AuditFields {
        AuditFields {
            audit_id: format!("aud_{n}"),
            at_ms: 1_700_000_000_000 + n,
            actor_role: "operator".into(),
            actor_subject: "ops".into(),
            action: "order.ship".into(),
            entity_type: "order".into(),
            entity_id: format!("ord_{n}"),
            merchant_id: Some("mer_1".into()),
            detail: "{}".into(),
        }
    }

    fn chain(n: i64) -> Vec<ChainedEntry> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let f = fields(seq);
                let hash = entry_hash(&prev, seq, &f);
                let entry =
                    ChainedEntry { seq, fields: f, prev_hash: prev.clone(), entry_hash: hash.clone() };
                prev = hash;
                entry
            })
            .collect()
    }

    fn first_break(entries: &[ChainedEntry]) -> Option<ChainBreak> {
        let mut v = ChainVerifier::default();
        entries.iter().find_map(|e| v.check(e).err())
    }

    #[test]
    fn an_intact_chain_verifies_and_each_kind_of_tampering_is_named() {
        let good = chain(5);
        assert_eq!(first_break(&good), None);

        let mut edited = good.clone();
        edited[2].fields.detail = r#"{"total":1}"#.into();
        assert_eq!(first_break(&edited), Some(ChainBreak::Edited { seq: 3, audit_id: "aud_3".into() }));

        let mut deleted = good.clone();
        deleted.remove(1);
        assert!(matches!(
            first_break(&deleted),
            Some(ChainBreak::Missing { expected_seq: 2, found_seq: 3, .. })
        ));

        // Two entries swap places (their seqs swapped to look in order): the links break.
        let mut reordered = good.clone();
        reordered.swap(1, 2);
        reordered[1].seq = 2;
        reordered[2].seq = 3;
        assert!(matches!(first_break(&reordered), Some(ChainBreak::Edited { seq: 2, .. })));

        // Rehashed after the swap so each entry matches itself: still unlinked.
        let mut relinked = reordered.clone();
        for e in &mut relinked[1..3] {
            e.entry_hash = entry_hash(&e.prev_hash, e.seq, &e.fields);
        }
        assert!(matches!(first_break(&relinked), Some(ChainBreak::Unlinked { seq: 2, .. })));
    }

    #[test]
    fn a_field_cannot_borrow_from_the_next() {
        let mut a = fields(1);
        let mut b = fields(1);
        a.action = "order.ship".into();
        a.entity_type = "order".into();
        b.action = "order.shiporder".into();
        b.entity_type = String::new();
        assert_ne!(entry_hash(GENESIS_HASH, 1, &a), entry_hash(GENESIS_HASH, 1, &b));
        let mut none = fields(1);
        none.merchant_id = None;
        let mut dash = fields(1);
        dash.merchant_id = Some(String::new());
        assert_ne!(entry_hash(GENESIS_HASH, 1, &none), entry_hash(GENESIS_HASH, 1, &dash));
    }

    #[test]
    fn a_digest_verifies_with_its_key_only_and_only_as_signed() {
        let key = signing_key(&[7; 32]);
        let other = signing_key(&[8; 32]);
        let body =
            DigestBody { day: "2026-12-08".into(), last_seq: 5, last_hash: "ab".repeat(32), entries: 5 };
        let signature = sign(&key, &body);
        assert_eq!(verify_signature(&public_key_hex(&key), &body, &signature), Ok(()));
        assert!(verify_signature(&public_key_hex(&other), &body, &signature).is_err());
        let rewritten = DigestBody { last_hash: "cd".repeat(32), ..body.clone() };
        assert!(verify_signature(&public_key_hex(&key), &rewritten, &signature).is_err());
        assert!(verify_signature("zz", &body, &signature).is_err());
    }
}
