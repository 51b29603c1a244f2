-- The social side's link from the pseudonymous buyer reference the core knows to the social
-- app's user id (compliance rule R6: the core never receives the user id or profile). Written by
-- the gateway; not a shop's data, so not captured.
CREATE TABLE buyer_refs (
    buyer_ref TEXT NOT NULL PRIMARY KEY,
    buyer_id TEXT NOT NULL
)
