"""Who may see what: tokens and the access policy, the public release (noise, suppression, ledger)."""
