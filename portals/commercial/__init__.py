"""Northstar Health provider portal (the commercial payer single-page app): adapter, page objects, mapping."""
