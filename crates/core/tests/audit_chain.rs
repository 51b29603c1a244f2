//! The audit chain against tampering done directly in the database (issue 6): an edited, a
//! deleted and a reordered row are each caught by verify and named; a digest signed, then the
//! history rewritten consistently (every later hash recomputed) or cut short, fails
//! verify-digest though the chain alone still verifies. On SQLite, or PostgreSQL with
//! `JEMBATAN_TEST_DATABASE_URL`.

use jembatan_core::audit::{seal_all, sign_digest, verify_chain, verify_digest};
use jembatan_domain::audit::{ChainBreak, entry_hash, public_key_hex, signing_key};
use jembatan_domain::*;
use jembatan_store::testing::{TestStore, fresh_store, raw_execute};
use jembatan_store::{WriteCtx, new_id};

/// A store with `n` merchants created (each a journaled change), all sealed.
async fn chain_of(n: usize) -> TestStore {
    let t = fresh_store().await.unwrap();
    add_merchants(&t, n).await;
    t
}

/// `n` more journaled changes, sealed.
async fn add_merchants(t: &TestStore, n: usize) {
    for i in 0..n {
        let m = Merchant::new(
            new_id(),
            MerchantName::parse(&format!("Toko {i}")).unwrap(),
            Origin::Local,
            Province::parse("Bali").unwrap(),
            Some(Nib::parse("1234567890123").unwrap()),
            Timestamp::from_unix_ms(0),
        )
        .unwrap();
        let ctx = WriteCtx {
            actor: Principal::Operator,
            now: Timestamp::from_unix_ms(1_733_000_000_000 + i as i64),
        };
        t.store.create_merchant(ctx, m, None).await.unwrap();
    }
    seal_all(&t.store).await.unwrap();
}

async fn first_break(t: &TestStore) -> Option<ChainBreak> {
    verify_chain(&t.store, None).await.unwrap().first_break
}

#[tokio::test]
async fn an_untouched_chain_verifies_and_new_entries_extend_it() {
    let t = chain_of(5).await;
    let report = verify_chain(&t.store, None).await.unwrap();
    assert!(report.verified >= 5, "{report:?}");
    assert_eq!(report.first_break, None);
    assert_eq!(report.unsealed, 0);
    let (seq, hash, _) = t.store.audit_head().await.unwrap();
    assert_eq!((seq, hash), (report.verified, report.head_hash));
}

#[tokio::test]
async fn an_edited_row_is_caught_and_named() {
    let t = chain_of(5).await;
    let changed =
        raw_execute(&t.url, "UPDATE audit_log SET detail = '{\"name\":\"Toko X\"}' WHERE chain_seq = 3")
            .await
            .unwrap();
    assert_eq!(changed, 1);
    match first_break(&t).await {
        Some(ChainBreak::Edited { seq: 3, .. }) => {}
        other => panic!("expected entry 3 edited, got {other:?}"),
    }
}

#[tokio::test]
async fn a_deleted_row_is_caught_and_named() {
    let t = chain_of(5).await;
    assert_eq!(raw_execute(&t.url, "DELETE FROM audit_log WHERE chain_seq = 2").await.unwrap(), 1);
    match first_break(&t).await {
        Some(ChainBreak::Missing { expected_seq: 2, found_seq: 3, .. }) => {}
        other => panic!("expected entry 2 missing, got {other:?}"),
    }
}

#[tokio::test]
async fn reordered_rows_are_caught() {
    let t = chain_of(5).await;
    for sql in [
        "UPDATE audit_log SET chain_seq = -1 WHERE chain_seq = 2",
        "UPDATE audit_log SET chain_seq = 2 WHERE chain_seq = 3",
        "UPDATE audit_log SET chain_seq = 3 WHERE chain_seq = -1",
    ] {
        assert_eq!(raw_execute(&t.url, sql).await.unwrap(), 1, "{sql}");
    }
    let found = first_break(&t).await.expect("a break");
    assert_eq!(found.seq(), 2, "{found:?}");
    // Swapped back with their hashes recomputed, each row matches itself: the links still break.
    let t = chain_of(5).await;
    let entries = t.store.audit_chain(0, 10).await.unwrap();
    let (two, three) = (&entries[1], &entries[2]);
    for (entry, seq) in [(three, 2), (two, 3)] {
        let sql = format!(
            "UPDATE audit_log SET chain_seq = {}, entry_hash = '{}' WHERE audit_id = '{}'",
            -seq,
            entry_hash(&entry.prev_hash, seq, &entry.fields),
            entry.fields.audit_id
        );
        assert_eq!(raw_execute(&t.url, &sql).await.unwrap(), 1);
    }
    raw_execute(&t.url, "UPDATE audit_log SET chain_seq = -chain_seq WHERE chain_seq < 0").await.unwrap();
    match first_break(&t).await {
        Some(ChainBreak::Unlinked { seq: 2, .. }) => {}
        other => panic!("expected entry 2 unlinked, got {other:?}"),
    }
}

#[tokio::test]
async fn a_signed_digest_fails_once_history_is_rewritten_or_cut() {
    let t = chain_of(6).await;
    let key = signing_key(&[42; 32]);
    let public = public_key_hex(&key);
    let digest = sign_digest(&t.store, &key, "2026-12-08", 1_733_000_100_000).await.unwrap();
    assert_eq!(digest.body.last_seq, digest.body.entries, "the first digest covers every entry");
    assert_eq!(sign_digest(&t.store, &key, "2026-12-08", 0).await.unwrap(), digest, "a day is signed once");
    assert_eq!(verify_digest(&t.store, &digest, &public).await.unwrap(), Ok(()));
    assert!(
        verify_digest(&t.store, &digest, &public_key_hex(&signing_key(&[1; 32]))).await.unwrap().is_err(),
        "another key's check fails"
    );
    // Entries written after the digest extend the chain; the digest still verifies.
    add_merchants(&t, 3).await;
    assert_eq!(verify_digest(&t.store, &digest, &public).await.unwrap(), Ok(()));

    // Rewrite entry 2 and recompute every later hash: the chain alone verifies again…
    let mut entries = t.store.audit_chain(0, 100).await.unwrap();
    entries[1].fields.detail = "{\"name\":\"Toko rewritten\"}".to_owned();
    let mut prev = entries[0].entry_hash.clone();
    for entry in entries.iter_mut().skip(1) {
        entry.prev_hash = prev.clone();
        entry.entry_hash = entry_hash(&prev, entry.seq, &entry.fields);
        prev = entry.entry_hash.clone();
        let sql = format!(
            "UPDATE audit_log SET detail = '{}', prev_hash = '{}', entry_hash = '{}' WHERE chain_seq = {}",
            entry.fields.detail, entry.prev_hash, entry.entry_hash, entry.seq
        );
        assert_eq!(raw_execute(&t.url, &sql).await.unwrap(), 1);
    }
    assert_eq!(first_break(&t).await, None, "a consistent rewrite passes the chain check alone");
    // …but not the digest signed before it.
    let outcome = verify_digest(&t.store, &digest, &public).await.unwrap();
    assert!(outcome.as_ref().is_err_and(|e| e.contains("rewritten")), "{outcome:?}");

    // Cut short: the last entry deleted leaves a valid prefix, which the digest refuses.
    let t = chain_of(4).await;
    let digest = sign_digest(&t.store, &key, "2026-12-09", 0).await.unwrap();
    let sql = format!("DELETE FROM audit_log WHERE chain_seq = {}", digest.body.last_seq);
    assert_eq!(raw_execute(&t.url, &sql).await.unwrap(), 1);
    assert_eq!(first_break(&t).await, None);
    let outcome = verify_digest(&t.store, &digest, &public).await.unwrap();
    assert!(outcome.as_ref().is_err_and(|e| e.contains("deleted")), "{outcome:?}");
}
