//! `keyward audit anchor` and `keyward audit verify --anchor`, driven as a user would: the anchor
//! is signed by the server, a good chain verifies against it, and the newest events deleted from
//! the database (which the chain alone cannot show) fail verification with a message saying so;
//! an altered anchor file is refused.

mod support;

use support::Stack;

#[test]
fn an_anchor_catches_the_newest_events_deleted() {
    let stack = Stack::start();
    stack.configure_connector();
    stack.token("auditor-1", "auditor");
    let anchor_path = stack.dir.join("anchor.json");
    let anchor_file = anchor_path.to_str().unwrap();
    let made = stack.run(&["audit", "anchor", "--output", anchor_file]);
    assert!(made.ok && made.stderr.contains("hand it to your notary"), "{made:?}");
    let anchor: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&anchor_path).unwrap()).unwrap();
    assert_eq!(anchor["format"], "keyward-audit-anchor v1");
    let seq = anchor["seq"].as_i64().unwrap();
    assert!(seq >= 2 && anchor["hash"].as_str().unwrap().starts_with("hmac:"), "{anchor}");
    let again = stack.run(&["audit", "anchor", "--output", anchor_file]);
    assert!(!again.ok && again.stderr.contains("never overwritten"), "{again:?}");

    // A good chain, with events after the anchor, verifies against it.
    stack.token("auditor-2", "auditor");
    let good = stack.ok(&["audit", "verify", "--anchor", anchor_file]);
    assert!(good.contains("audit chain intact"), "{good}");

    // An anchor file edited to name a later head is refused as forged.
    let mut edited = anchor.clone();
    edited["seq"] = serde_json::json!(seq + 1);
    let edited_path = stack.dir.join("edited.json");
    std::fs::write(&edited_path, edited.to_string()).unwrap();
    let forged = stack.run(&["audit", "verify", "--anchor", edited_path.to_str().unwrap()]);
    assert!(!forged.ok && forged.stderr.contains("signature does not match"), "{forged:?}");

    // Someone with the database deletes the newest events, the anchored one among them.
    stack.block_on(async {
        sqlx::query("DELETE FROM audit_event WHERE seq >= $1")
            .bind(seq - 1)
            .execute(stack.service.store.pool())
            .await
            .unwrap();
    });
    let plain = stack.ok(&["audit", "verify"]);
    assert!(plain.contains("audit chain intact"), "without the anchor it goes unnoticed: {plain}");
    let caught = stack.run(&["audit", "verify", "--anchor", anchor_file]);
    assert!(!caught.ok, "{caught:?}");
    assert!(caught.stderr.contains("events at or before the anchor were deleted"), "{caught:?}");
}
