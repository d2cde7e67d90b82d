"""Meridian Exchange multi-payer clearinghouse (key "clearinghouse"): organization picker, claim status
tool in an iframe, per-payer search forms, staged detail modal, bare CARC/RARC codes, and a separate
remittance viewer (with step-up MFA) for payers that only report reasons there."""
