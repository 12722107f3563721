-- Named leases: one replica at a time runs a periodic sweep, or a batch's validation,
-- expiry or finalization.
CREATE TABLE leases (
	name  text PRIMARY KEY,
	owner text NOT NULL,
	until timestamptz NOT NULL
);
